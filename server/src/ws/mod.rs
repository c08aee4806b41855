//! WebSockets: single-use tickets, the sockets each key holds, the
//! delivery socket, and the accumulator and reactor sockets.

pub mod delivery;
pub mod graphs;
mod sockets;
mod tickets;
mod upgrade;

pub use delivery::Deliveries;
pub use sockets::Sockets;
pub use tickets::{RefusedBecause, TICKET_TTL, TicketError, Tickets};
