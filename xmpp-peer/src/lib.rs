//! xmpp-peer: placeholder until its issue lands.
