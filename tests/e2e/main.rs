//! End-to-end tests: the real `cloacinactl`, real sample crates built by
//! cargo, real keys and archives. One binary; one module per journey.

mod crashes;
mod faults;
mod graphs;
mod hosts;
mod loading;
mod outage;
mod packaging;
mod registry;
mod running;
mod serving;
mod soak;
mod tampering;
mod workload;
