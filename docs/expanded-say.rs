// What `#[micro::service]` generates for the trait below, pretty-printed.
// Checked by a test in micro-macros/src/expand/tests.rs; to update it after changing
// the macro, run `MICRO_BLESS=1 cargo test -p micro-macros` and review the diff.
//
// #[micro::service]
// pub trait Say {
//     /// unary
//     async fn hello(&self, name: String) -> Result<String, Status>;
//     /// server streaming: the return type is a stream
//     async fn stream(&self, req: SRequest)
//         -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
//     /// client streaming: an argument is a stream
//     async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
//     /// bidirectional: both
//     async fn bidirectional_stream(&self, reqs: impl Stream<Item = SRequest> + Send + Unpin)
//         -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
//     /// several plain args and an optional leading context
//     async fn add(&self, ctx: &Context, a: i32, b: i32) -> micro::Result<i32>;
// }

pub trait Say {
    /// unary
    fn hello(
        &self,
        name: String,
    ) -> impl ::core::future::Future<
        Output = Result<String, Status>,
    > + ::core::marker::Send;
    /// server streaming: the return type is a stream
    fn stream(
        &self,
        req: SRequest,
    ) -> impl ::core::future::Future<
        Output = Result<
            impl Stream<Item = Result<SResponse, Status>> + Send + 'static,
            Status,
        >,
    > + ::core::marker::Send;
    /// client streaming: an argument is a stream
    fn sum(
        &self,
        nums: impl Stream<Item = i64> + Send + Unpin + 'static,
    ) -> impl ::core::future::Future<
        Output = Result<i64, Status>,
    > + ::core::marker::Send;
    /// bidirectional: both
    fn bidirectional_stream(
        &self,
        reqs: impl Stream<Item = SRequest> + Send + Unpin + 'static,
    ) -> impl ::core::future::Future<
        Output = Result<
            impl Stream<Item = Result<SResponse, Status>> + Send + 'static,
            Status,
        >,
    > + ::core::marker::Send;
    /// several plain args and an optional leading context
    fn add(
        &self,
        ctx: &Context,
        a: i32,
        b: i32,
    ) -> impl ::core::future::Future<Output = micro::Result<i32>> + ::core::marker::Send;
}
/// Serves a [`Say`] implementation: pass `SayServer::new(service)` to `micro::Server::builder().add_service(…)`.
#[allow(dead_code)]
pub struct SayServer<T> {
    inner: ::std::sync::Arc<T>,
}
#[allow(dead_code)]
impl<T> SayServer<T> {
    /// Wraps `service`; every call shares it.
    #[must_use]
    pub fn new(service: T) -> Self {
        Self {
            inner: ::std::sync::Arc::new(service),
        }
    }
    /// Serves a service that is already shared behind an `Arc`.
    #[must_use]
    pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {
        Self { inner: service }
    }
    /// The wrapped service.
    #[must_use]
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}
#[automatically_derived]
impl<T> ::core::clone::Clone for SayServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: ::core::clone::Clone::clone(&self.inner),
        }
    }
}
#[automatically_derived]
impl<T> ::core::fmt::Debug for SayServer<T> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("SayServer").finish_non_exhaustive()
    }
}
#[automatically_derived]
impl<T> ::micro::Service for SayServer<T>
where
    T: Say + ::core::marker::Send + ::core::marker::Sync + 'static,
{
    fn descriptor(&self) -> &'static ::micro::ServiceDescriptor {
        &SayClient::DESCRIPTOR
    }
    fn call(
        &self,
        method: usize,
        call: ::micro::__private::ServerCall,
    ) -> ::micro::__private::HandlerFuture {
        let service = ::core::clone::Clone::clone(&self.inner);
        match method {
            0usize => {
                ::micro::__private::serve_unary(
                    call,
                    &["name"],
                    move |_ctx: ::micro::Context, (name,): (String,)| async move {
                        Say::hello(&*service, name).await
                    },
                )
            }
            1usize => {
                ::micro::__private::serve_server_streaming(
                    call,
                    &["req"],
                    move |
                        _ctx: ::micro::Context,
                        (req,): (SRequest,),
                        replies: ::micro::__private::Replies|
                    async move { replies.send(Say::stream(&*service, req).await).await },
                )
            }
            2usize => {
                ::micro::__private::serve_client_streaming(
                    call,
                    &[],
                    move |
                        _ctx: ::micro::Context,
                        (): (),
                        nums: ::micro::RequestStream<i64>|
                    async move { Say::sum(&*service, nums).await },
                )
            }
            3usize => {
                ::micro::__private::serve_bidirectional(
                    call,
                    &[],
                    move |
                        _ctx: ::micro::Context,
                        (): (),
                        reqs: ::micro::RequestStream<SRequest>,
                        replies: ::micro::__private::Replies|
                    async move {
                        replies
                            .send(Say::bidirectional_stream(&*service, reqs).await)
                            .await
                    },
                )
            }
            4usize => {
                ::micro::__private::serve_unary(
                    call,
                    &["a", "b"],
                    move |ctx: ::micro::Context, (a, b): (i32, i32)| async move {
                        Say::add(&*service, &ctx, a, b).await
                    },
                )
            }
            _ => ::micro::__private::unknown_method(call),
        }
    }
}
/// A client of the `Say` service: one method per method of [`Say`], each returning a call to `.await`.
///
/// Cloning is cheap: clones share one connection.
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
#[allow(dead_code)]
pub struct SayClient {
    client: ::micro::Client,
}
#[allow(dead_code)]
impl SayClient {
    /// The `Say` service as it is known on the wire: its name and each method's name and call kind.
    pub const DESCRIPTOR: ::micro::ServiceDescriptor = ::micro::ServiceDescriptor {
        name: "Say",
        methods: &[
            ::micro::MethodDescriptor {
                name: "hello",
                full_name: "Say.hello",
                kind: ::micro::MethodKind::Unary,
            },
            ::micro::MethodDescriptor {
                name: "stream",
                full_name: "Say.stream",
                kind: ::micro::MethodKind::ServerStreaming,
            },
            ::micro::MethodDescriptor {
                name: "sum",
                full_name: "Say.sum",
                kind: ::micro::MethodKind::ClientStreaming,
            },
            ::micro::MethodDescriptor {
                name: "bidirectional_stream",
                full_name: "Say.bidirectional_stream",
                kind: ::micro::MethodKind::Bidirectional,
            },
            ::micro::MethodDescriptor {
                name: "add",
                full_name: "Say.add",
                kind: ::micro::MethodKind::Unary,
            },
        ],
    };
}
#[allow(dead_code)]
impl SayClient {
    /// Connects to a `Say` server at `addr` (TCP).
    ///
    /// # Errors
    ///
    /// The `Status` of a failed connection or handshake, as from `micro::Client::connect`.
    pub async fn connect<A: ::micro::__private::ToSocketAddrs>(
        addr: A,
    ) -> ::core::result::Result<Self, ::micro::Status> {
        ::core::result::Result::Ok(Self::new(::micro::Client::connect(addr).await?))
    }
    /// A `Say` client on an existing connection, which it shares with other clients.
    #[must_use]
    pub fn new(client: ::micro::Client) -> Self {
        Self { client }
    }
    /// The connection this client calls over.
    #[must_use]
    pub fn client(&self) -> &::micro::Client {
        &self.client
    }
    /// unary
    pub fn hello(&self, name: String) -> ::micro::client::UnaryCall<String> {
        ::micro::__private::call_unary(&self.client, "Say.hello", &["name"], (name,))
    }
    /// server streaming: the return type is a stream
    pub fn stream(
        &self,
        req: SRequest,
    ) -> ::micro::client::ServerStreamingCall<SResponse> {
        ::micro::__private::call_server_streaming(
            &self.client,
            "Say.stream",
            &["req"],
            (req,),
        )
    }
    /// client streaming: an argument is a stream
    pub fn sum(
        &self,
        nums: impl ::micro::Stream<Item = i64> + ::core::marker::Send + 'static,
    ) -> ::micro::client::ClientStreamingCall<i64, i64> {
        ::micro::__private::call_client_streaming(&self.client, "Say.sum", &[], (), nums)
    }
    /// bidirectional: both
    pub fn bidirectional_stream(
        &self,
        reqs: impl ::micro::Stream<Item = SRequest> + ::core::marker::Send + 'static,
    ) -> ::micro::client::BidiStreamingCall<SRequest, SResponse> {
        ::micro::__private::call_bidirectional(
            &self.client,
            "Say.bidirectional_stream",
            &[],
            (),
            reqs,
        )
    }
    /// Opens `bidirectional_stream` as a duplex handle: `send` requests, `close_send` when done, and `recv` the responses.
    pub fn bidirectional_stream_duplex(
        &self,
    ) -> ::micro::client::DuplexCall<SRequest, SResponse> {
        ::micro::__private::call_duplex(
            &self.client,
            "Say.bidirectional_stream",
            &[],
            (),
        )
    }
    /// several plain args and an optional leading context
    pub fn add(&self, a: i32, b: i32) -> ::micro::client::UnaryCall<i32> {
        ::micro::__private::call_unary(&self.client, "Say.add", &["a", "b"], (a, b))
    }
}
