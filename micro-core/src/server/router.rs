//! Maps `"Service.method"` to the service and method that serve it.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::{MethodDescriptor, Service};

/// Where a method's calls go.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) service: Arc<dyn Service>,
    pub(crate) index: usize,
    pub(crate) method: &'static MethodDescriptor,
}

/// Every method of every service a server offers.
#[derive(Clone, Default)]
pub(crate) struct Router {
    routes: HashMap<&'static [u8], Route, BuildHasherDefault<Fnv>>,
    services: Vec<&'static str>,
}

impl Router {
    /// Adds every method of `service`.
    ///
    /// # Panics
    ///
    /// If a service of the same name was added already.
    pub(crate) fn add(&mut self, service: &Arc<dyn Service>) {
        let descriptor = service.descriptor();
        assert!(
            !self.services.contains(&descriptor.name),
            "a service named {:?} was added to this server twice",
            descriptor.name
        );
        self.services.push(descriptor.name);
        for (index, method) in descriptor.methods.iter().enumerate() {
            self.routes.insert(
                method.full_name.as_bytes(),
                Route {
                    service: service.clone(),
                    index,
                    method,
                },
            );
        }
    }

    /// The route for a method name as it arrived on the wire.
    pub(crate) fn get(&self, method: &[u8]) -> Option<&Route> {
        self.routes.get(method)
    }
}

/// FNV-1a, for the method table. SipHash protects a table that takes the peer's keys; this one
/// is fixed before the server starts, so a peer choosing the names it asks for cannot lengthen
/// a lookup. SipHash and a UTF-8 check cost a unary call ~380 instructions here (callgrind).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}
