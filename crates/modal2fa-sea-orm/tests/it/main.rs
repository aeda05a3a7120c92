//! The SeaORM store's integration tests, one binary: every port contract on every
//! reachable backend, schema and concurrency across two pools, and the core services
//! signing in on a real database.

mod bursts;
mod common;
mod outage;
mod port_contracts;
mod schema_and_concurrency;
mod sign_in_on_the_database;
mod usernames_and_collations;
mod wiring;
