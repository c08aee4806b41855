//! WebSockets: single-use tickets and the delivery socket.

pub mod delivery;
mod tickets;

pub use delivery::Deliveries;
pub use tickets::{TICKET_TTL, Tickets};
