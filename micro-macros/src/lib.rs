//! The `#[micro::service]` attribute. Use it through the `micro` crate, which re-exports it;
//! the generated code names `::micro::…` paths only.
//!
//! The pipeline shows in the module names: `parse` reads the trait into the `model`,
//! `validate` checks every signature rule and reports all errors of a trait at once, `expand`
//! generates the items, and `fallback` emits the user's trait next to the errors when there
//! are any.

mod expand;
mod fallback;
mod model;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns a trait of `async fn`s into a micro service.
///
/// ```ignore
/// use micro::{Context, Status, Stream};
///
/// #[micro::service]
/// pub trait Say {
///     /// Unary: one request, one response.
///     async fn hello(&self, name: String) -> Result<String, Status>;
///     /// Server streaming: the return type is a stream.
///     async fn stream(&self, req: SRequest)
///         -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status>;
///     /// Client streaming: an argument is a stream.
///     async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
///     /// Several arguments, and the call's context first (not sent on the wire).
///     async fn add(&self, ctx: &Context, a: i32, b: i32) -> micro::Result<i32>;
/// }
/// ```
///
/// Next to the trait (which you implement with `async fn`s, as declared) this generates:
/// - `SayServer<T>`: wraps your implementation in an `Arc` for
///   `micro::Server::builder().add_service(…)`; a returned stream may borrow `&self` and the
///   method's arguments, since the server drains it inside the call;
/// - `SayClient`: one method per trait method, with the same arguments (no context) returning
///   a call you `.await` (or configure first: metadata, timeout); for a bidirectional method
///   `x` also `x_duplex`, a handle with `send`, `close_send` and `recv`;
/// - `SayClient::DESCRIPTOR`: the service's wire name and each method's name and call kind.
///
/// The call kind comes from the signature: a stream argument makes a method client-streaming,
/// a stream in the `Ok` of the return makes it server-streaming, both make it bidirectional.
/// Signatures that cannot be served are compile errors pointing at the offending tokens.
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::service(args.into(), input.into()).into()
}
