//! Support for micro's fuzz targets: the `server` harness, the service it serves, byte
//! builders for the wire format of `docs/PROTOCOL.md`, and the seed inputs of every target.

pub mod seeds;
pub mod server;
pub mod service;
pub mod wire;
