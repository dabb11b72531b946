//! Maps `"Service.method"` to the service and method that serve it.

use std::collections::HashMap;
use std::fmt;
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
    routes: HashMap<&'static str, Route>,
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
                method.full_name,
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
        std::str::from_utf8(method)
            .ok()
            .and_then(|m| self.routes.get(m))
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}
