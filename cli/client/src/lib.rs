//! A blocking client of the server's API: one method per route, replies
//! and errors in the wire types the server writes (`cloacina-wire`), and
//! the delivery socket as an iterator of events. It knows nothing of the
//! server's code; `cloacinactl`'s client commands are built on it.

mod client;
mod error;
mod events;

pub use client::{Client, ExecutionQuery};
pub use error::ClientError;
pub use events::EventStream;
