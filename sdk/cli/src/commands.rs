//! The commands, grouped by what they act on. Each prints its result with [`crate::output`] and leaves errors to
//! `main`.

pub mod account;
pub mod blobs;
pub mod devices;
pub mod sync;
