//! The package library's integration tests: one binary, one module per area.

mod fixtures;
mod fuzz;
mod hostile;
mod roundtrip;
mod streaming;
