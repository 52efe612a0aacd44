//! Integration tests against the real `Application` on a random port, and against the real
//! binary where a process must die or restart.

mod auth;
mod bad_input;
mod durability;
mod helpers;
mod process;
mod supervision;
mod tickets;
