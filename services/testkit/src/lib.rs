//! Test support for SyncKit, the one harness every crate's tests and benchmarks use: a real server on a real port
//! on the engines a test names, request helpers that speak the wire protocol, a fault proxy, and the real engines
//! the test environment runs.
//!
//! A test that needs Postgres, NATS or Garage fails loudly when it cannot reach it: `ops/test` starts them first.
//! Set `SYNCKIT_TEST_DATABASE_URL` to use another Postgres than `postgres://postgres@127.0.0.1:5432/test`.
//!
//! # Layout
//! - [`server`]: [`TestServer`], started on an [`Engine`] (see [`engine`]), and [`on_each_engine!`], which runs a
//!   test once per engine.
//! - [`http`]: requests as a client sends them, signed-up [`TestUser`]s, and small helpers (base64, error codes).
//! - [`proxy`]: [`FaultProxy`], which cuts, stalls, swallows or alters answers, or goes down as a whole.
//! - [`postgres`]: throwaway databases. [`garage`](mod@garage): the test S3 store.

pub mod garage;
pub mod http;
pub mod postgres;
pub mod proxy;
pub mod server;

pub use garage::{GARAGE_ADDR, garage};
pub use http::{TestUser, b64, code, email, entries, random_bytes, unb64};
pub use postgres::fresh_database;
pub use proxy::{Fault, FaultProxy};
pub use server::{Engine, FromEngine, NATS_URL, PRELOGIN_SECRET, TOKEN_SECRET, TestServer, URL_SECRET, engine, secret};
