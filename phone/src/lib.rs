//! phone: placeholder until its issue lands.
