//! Shared harness for the mock-apns proofs: starts the real `mock-apns` binary, drives its control
//! API, crafts provider tokens, runs external clients (curl, nghttp, Python aioapns) under a
//! deadline, and holds the catalogue of push cases every client must get the right answer for.
#![allow(dead_code)]

pub mod cases;
pub mod clients;
pub mod jwt;
pub mod process;
pub mod server;
pub mod wire;
