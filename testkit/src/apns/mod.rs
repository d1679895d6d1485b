//! The harness of mock-apns' own proofs: the real `mock-apns` binary as a child process and its
//! control API ([`server`]), provider tokens ([`jwt`]), external clients (curl, nghttp, Python
//! aioapns) under a deadline ([`clients`]), a scriptable HTTP/2 client and a raw frame writer
//! ([`wire`]), and the catalogue of push cases every client must get the right answer for
//! ([`cases`]).

pub mod cases;
pub mod clients;
pub mod jwt;
pub mod server;
pub mod wire;
