//! The runtime's integration tests. Each scenario runs on SQLite and on
//! PostgreSQL (`CLOACINA_TEST_POSTGRES_URL`, default the local server; when
//! it is unreachable the PostgreSQL half is skipped with a message, or
//! fails under `CI=true`).

#[macro_use]
mod support;

mod dag;
mod events;
mod failures;
mod invoked;
mod recovery;
mod schedules;
mod tenancy;
mod versions;
