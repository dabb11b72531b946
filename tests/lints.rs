//! What `#[micro::service]` generates is lint-clean: these services expand under strict rustc
//! lints here, and under `clippy::all` and `clippy::pedantic` when CI runs
//! `cargo clippy --all-targets -- -D warnings`.

#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    unused_import_braces,
    unused_lifetimes,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic
)]

/// A public service using every call kind, a context, and infallible stream items.
pub mod public {
    use micro::{Context, RequestStream, Status, Stream};
    use serde::{Deserialize, Serialize};

    /// A request.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct SRequest {
        /// How many replies.
        pub count: i64,
    }

    /// A reply.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct SResponse {
        /// The words.
        pub value: Vec<String>,
    }

    /// An application error with its own conversion to a status.
    #[derive(Debug)]
    pub struct TickError;

    impl From<TickError> for Status {
        fn from(_: TickError) -> Status {
            Status::failed_precondition("no ticks")
        }
    }

    /// The service.
    #[micro::service]
    pub trait Say {
        /// Unary.
        async fn hello(&self, name: String) -> Result<String, Status>;
        /// Server streaming.
        async fn stream(
            &self,
            req: SRequest,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
        /// Client streaming.
        async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
        /// Bidirectional.
        async fn bidirectional_stream(
            &self,
            reqs: impl Stream<Item = SRequest> + Send + Unpin,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
        /// Context and several arguments.
        async fn add(&self, ctx: &Context, a: i32, b: i32) -> micro::Result<i32>;
        /// No arguments, infallible items, the concrete stream type among plain arguments.
        async fn ticks(
            &self,
            every: u64,
            items: RequestStream<u8>,
        ) -> Result<impl Stream<Item = u64> + Send + 'static, TickError>;
        /// Nothing at all.
        async fn ping(&self) -> micro::Result<()>;
    }
}

/// A crate-private service that nothing uses: its generated items must not warn either.
mod private {
    use micro::Status;

    #[micro::service]
    pub(crate) trait Unused {
        /// Unary.
        async fn get(&self, key: String) -> Result<Option<String>, Status>;
    }
}

#[test]
fn the_services_expand() {
    assert_eq!(public::SayClient::DESCRIPTOR.methods.len(), 7);
    assert_eq!(private::UnusedClient::DESCRIPTOR.name, "Unused");
}
