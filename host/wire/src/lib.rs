//! What the server and its clients say to each other: the shapes of
//! requests, replies and frames, with no behaviour of their own. The
//! server writes them, `cloacinactl`'s client reads them; both compile
//! against this one definition.

pub mod error;

pub use error::{ErrorBody, RefusalKind};
