//! The server driven from outside, on loopback, the way clients and
//! attackers drive it: one test binary for the crate.

mod audit;
mod connections;
mod console;
mod delivery;
mod executions;
mod graphs;
mod hosts;
mod keys;
mod metrics;
mod openapi;
mod protocol;
mod support;
mod tenants;
mod throttle;
mod tls;
mod uploads;
