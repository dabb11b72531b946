//! `#[micro::service]` output compiles where nothing is in scope but what the user imported:
//! every path it names is absolute (`::micro`, `::core`, `::std`), and its locals cannot be
//! shadowed by the user's argument names.

mod no_prelude {
    #![no_implicit_prelude]

    use ::futures::stream::{self, BoxStream, StreamExt};
    use ::micro::{Context, RequestStream, Status, Stream};
    use ::std::marker::{Send, Unpin};
    use ::std::option::Option::{None, Some};
    use ::std::result::Result::{self, Ok};
    use ::std::string::String;
    use ::std::vec::Vec;

    // Names a careless expansion would trip over: the user's own `Result`, `Option`, `Box`,
    // `Service`, `Client` and `Context` types and a module named `micro`.
    pub(crate) struct Option;
    pub(crate) struct Box;
    pub(crate) struct Service;
    pub(crate) struct Client;
    pub(crate) mod micro {}

    #[derive(::serde::Serialize, ::serde::Deserialize)]
    pub(crate) struct SRequest {
        pub count: i64,
    }

    #[derive(::serde::Serialize, ::serde::Deserialize)]
    pub(crate) struct SResponse {
        pub value: Vec<String>,
    }

    #[::micro::service]
    pub trait Say {
        /// unary
        async fn hello(&self, name: String) -> Result<String, Status>;
        /// server streaming
        async fn stream(
            &self,
            req: SRequest,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
        /// client streaming
        async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
        /// bidirectional
        async fn bidirectional_stream(
            &self,
            reqs: impl Stream<Item = SRequest> + Send + Unpin,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
        /// a context and arguments named like the generated code's locals
        async fn shadow(
            &self,
            ctx: &Context,
            service: String,
            call: u32,
            method: u32,
            client: u8,
        ) -> ::micro::Result<String>;
        /// infallible stream items, the concrete stream type, a stream among plain arguments
        async fn count(
            &self,
            from: u64,
            items: RequestStream<u64>,
            to: u64,
        ) -> Result<impl Stream<Item = u64> + 'static, Status>;
    }

    pub(crate) struct MySay;

    impl Say for MySay {
        async fn hello(&self, name: String) -> Result<String, Status> {
            Ok(name)
        }

        async fn stream(
            &self,
            req: SRequest,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>
        {
            let count = req.count;
            Ok(stream::iter(0..count).map(|_| Ok(SResponse { value: Vec::new() })))
        }

        async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status> {
            Ok(nums.fold(0, |sum, n| async move { sum + n }).await)
        }

        // The macro adds `'static` to stream arguments (the server's `RequestStream` is), so
        // an impl may ask for it and move the requests into the reply stream.
        async fn bidirectional_stream(
            &self,
            reqs: impl Stream<Item = SRequest> + Send + Unpin + 'static,
        ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>
        {
            let replies: BoxStream<'static, _> = reqs
                .map(|req| {
                    let _ = req.count;
                    Ok(SResponse { value: Vec::new() })
                })
                .boxed();
            Ok(replies)
        }

        async fn shadow(
            &self,
            ctx: &Context,
            service: String,
            call: u32,
            method: u32,
            client: u8,
        ) -> ::micro::Result<String> {
            let _ = (ctx.method(), call, method, client);
            Ok(service)
        }

        async fn count(
            &self,
            from: u64,
            items: RequestStream<u64>,
            to: u64,
        ) -> Result<impl Stream<Item = u64> + 'static, Status> {
            let _ = items;
            Ok(stream::iter(from..to))
        }
    }

    pub(crate) fn server() -> SayServer<MySay> {
        SayServer::new(MySay)
    }

    /// The client type, and one of its calls, name-checked.
    pub(crate) fn call(client: &SayClient) -> ::micro::client::UnaryCall<String> {
        let _ = (Option, Box, Service, Client, None::<u8>, Some(0u8));
        client.hello(String::new())
    }
}

#[test]
fn the_service_is_generated_without_a_prelude() {
    let server = no_prelude::server();
    let descriptor = micro::Service::descriptor(&server);
    assert_eq!(descriptor.name, "Say");
    let names: Vec<&str> = descriptor.methods.iter().map(|m| m.full_name).collect();
    assert_eq!(
        names,
        [
            "Say.hello",
            "Say.stream",
            "Say.sum",
            "Say.bidirectional_stream",
            "Say.shadow",
            "Say.count",
        ]
    );
    let _: fn(&no_prelude::SayClient) -> micro::client::UnaryCall<String> = no_prelude::call;
}
