//! Integration tests against the real `Application` on a random port.

mod auth;
mod bad_input;
mod helpers;
mod supervision;
mod tickets;
