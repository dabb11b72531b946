//! [`Service`]: what `#[micro::service]` implements for `<Name>Server<T>`, and the descriptors
//! that name a service's methods on the wire.

use crate::private::{HandlerFuture, ServerCall};

/// A service the [`Server`](crate::Server) can route calls to.
///
/// `#[micro::service]` implements it for the generated `<Name>Server<T>`; you do not implement
/// it by hand.
pub trait Service: Send + Sync + 'static {
    /// The service's name and methods.
    fn descriptor(&self) -> &'static ServiceDescriptor;

    /// Runs method number `method` (its index in [`ServiceDescriptor::methods`]) for one call.
    #[doc(hidden)]
    fn call(&self, method: usize, call: ServerCall) -> HandlerFuture;
}

/// A service as it is known on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// The service's name: the trait's name.
    pub name: &'static str,
    /// Its methods, in the trait's order.
    pub methods: &'static [MethodDescriptor],
}

/// One method of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// The method's name as written in the trait.
    pub name: &'static str,
    /// `"Service.method"`: the name an OPEN frame carries.
    pub full_name: &'static str,
    /// How requests and responses flow.
    pub kind: MethodKind,
}

/// The four shapes of a call, decided by the method's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses (the method returns a `Stream`).
    ServerStreaming,
    /// A stream of requests (an argument is a `Stream`), one response.
    ClientStreaming,
    /// Streams both ways.
    Bidirectional,
}
