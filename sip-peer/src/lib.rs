//! sip-peer: placeholder until its issue lands.
