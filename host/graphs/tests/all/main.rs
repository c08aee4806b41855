//! The graph runtime's integration tests, each on SQLite and on PostgreSQL
//! (`CLOACINA_TEST_POSTGRES_URL`, default the local server; skipped with a
//! message when unreachable, a failure under `CI=true`).

#[macro_use]
mod support;

mod firing;
mod hosts;
mod recovery;
mod sample;
