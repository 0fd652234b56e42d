//! tonic-based go-plugin server (plugin side) and client (host side).

pub mod proto;
