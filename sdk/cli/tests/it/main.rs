//! The `synckit` command-line tool as a user runs it, one test binary.

mod cli;
