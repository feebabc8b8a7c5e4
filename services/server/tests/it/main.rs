//! The server over real HTTP, one test binary: each module is one area of behaviour, on the engines it names.

mod api;
mod blobs;
mod concurrency;
mod events;
mod operations;
mod unavailable;
