//! A blocking client of the server's API: one method per route, replies
//! and errors in the wire types the server writes (`cloacina-wire`), and
//! the delivery socket as an iterator of events, the accumulator socket as
//! a pipelined, acknowledged producer. It knows nothing of the server's
//! code; `cloacinactl`'s client commands are built on it. `https://`
//! servers are verified against [`TlsRoots`], the same for HTTP and
//! sockets.

mod accumulator;
mod client;
mod error;
mod events;
mod tls;

pub use accumulator::{
    AccumulatorSocket, DEFAULT_ACK_TIMEOUT, DEFAULT_WINDOW, MAX_EVENT_BYTES, Rejection,
};
pub use client::{Client, ExecutionQuery};
pub use error::ClientError;
pub use events::EventStream;
pub use tls::TlsRoots;
