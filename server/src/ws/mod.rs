//! WebSockets: single-use tickets, the sockets each key holds, and the
//! delivery socket.

pub mod delivery;
mod sockets;
mod tickets;

pub use delivery::Deliveries;
pub use sockets::Sockets;
pub use tickets::{RefusedBecause, TICKET_TTL, Tickets};
