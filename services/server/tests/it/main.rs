//! The server over real HTTP, one test binary: each module is one area of behaviour, on the engines it names.
//!
//! These tests spell each path out rather than use `synckit_protocol::paths`: they check the wire contract, and a
//! test that used the constant would follow it if it changed.

mod api;
mod apps;
mod blobs;
mod concurrency;
mod connections;
mod console;
mod events;
mod fairness;
mod gateway;
mod memory;
mod oauth;
mod operations;
mod plans;
mod postgres_tls;
mod readiness;
mod recovery;
mod revocation;
mod secrets;
mod sign_in_throttle;
mod unavailable;
mod usage;
