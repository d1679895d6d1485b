//! mock-apns: placeholder until its issue lands.
