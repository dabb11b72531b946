//! Generation. [`service`] runs the pipeline; [`Generator`] holds the names every generated
//! item shares, computed once, and has one function per generated item, one file per part:
//! the rewritten trait ([`trait_def`]), the server ([`server`]), the descriptor
//! ([`descriptor`]) and the client ([`client`]).
//!
//! Every path is absolute (`::micro::…`, `::core::…`, `::std::…`) so the output compiles under
//! `#![no_implicit_prelude]`; locals the user's arguments could shadow are `mixed_site`; the
//! user's tokens keep their spans.

mod client;
mod descriptor;
mod server;
mod trait_def;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::Ident;
use syn::ext::IdentExt;

use crate::model::{Kind, Method, Service};
use crate::{fallback, parse, validate};

/// `#[micro::service]`: parse → validate → generate, or the fallback on any error.
pub(crate) fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    let service = match parse::service(args, input.clone()) {
        Ok(service) => service,
        Err(error) => return fallback::emit(input, &error),
    };
    match validate::service(&service) {
        Ok(()) => Generator::new(&service).generate(),
        Err(error) => fallback::emit(input, &error),
    }
}

/// A validated service and the names its generated items share.
struct Generator<'a> {
    service: &'a Service,
    /// `Say`, without `r#`: the service's wire name.
    name: String,
    /// `SayServer`
    server: Ident,
    /// `SayClient`
    client: Ident,
    methods: Vec<MethodNames<'a>>,
    /// Locals of the generated code, hygienic so that no argument name can shadow them.
    service_local: Ident,
    ctx_local: Ident,
    call_local: Ident,
    method_local: Ident,
    replies_local: Ident,
}

/// A method and the names and tokens its server arm and client methods share.
struct MethodNames<'a> {
    method: &'a Method,
    /// The method's position in the trait: its index in `DESCRIPTOR.methods`.
    index: Literal,
    /// `hello`, without `r#`.
    name: String,
    /// `Say.hello`: the wire name.
    full_name: String,
    /// `bidirectional_stream_duplex`
    duplex: Ident,
    /// `"a", "b"`: the plain arguments' names.
    arg_names: Vec<String>,
    /// `()`, `(a,)`, `(a, b)`: the plain arguments as a pattern (server) and a value (client).
    arg_tuple: TokenStream,
    /// `()`, `(i32,)`, `(i32, i32)`.
    arg_types: TokenStream,
}

impl<'a> Generator<'a> {
    fn new(service: &'a Service) -> Self {
        let name = service.ident.unraw().to_string();
        let methods = service
            .methods
            .iter()
            .enumerate()
            .map(|(index, method)| {
                let idents: Vec<&Ident> = method.args.iter().map(|arg| &arg.ident).collect();
                let types: Vec<&syn::Type> = method.args.iter().map(|arg| &arg.ty).collect();
                let method_name = method.ident.unraw().to_string();
                MethodNames {
                    method,
                    index: Literal::usize_suffixed(index),
                    full_name: format!("{name}.{method_name}"),
                    name: method_name,
                    duplex: format_ident!("{}_duplex", method.ident),
                    arg_names: idents.iter().map(|i| i.unraw().to_string()).collect(),
                    arg_tuple: tuple(&idents),
                    arg_types: tuple(&types),
                }
            })
            .collect();
        Self {
            server: format_ident!("{}Server", service.ident),
            client: format_ident!("{}Client", service.ident),
            name,
            methods,
            service_local: Ident::new("service", Span::mixed_site()),
            ctx_local: Ident::new("ctx", Span::mixed_site()),
            call_local: Ident::new("call", Span::mixed_site()),
            method_local: Ident::new("method", Span::mixed_site()),
            replies_local: Ident::new("replies", Span::mixed_site()),
            service,
        }
    }

    fn generate(&self) -> TokenStream {
        let items = [
            self.trait_def(),
            self.server_struct(),
            self.server_impl(),
            self.server_clone_impl(),
            self.server_debug_impl(),
            self.service_impl(),
            self.client_struct(),
            self.descriptor(),
            self.client_impl(),
        ];
        quote!(#(#items)*)
    }
}

/// `()`, `(a,)`, `(a, b)`: one element keeps its comma.
fn tuple<T: ToTokens>(elems: &[T]) -> TokenStream {
    match elems {
        [one] => quote!((#one,)),
        _ => quote!((#(#elems),*)),
    }
}

/// `#[doc = " text"]`, one per line, so it reads like `/// text`.
fn doc(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| {
        if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        }
    });
    quote!(#(#[doc = #lines])*)
}

impl Kind {
    /// What the call exchanges, for generated docs.
    fn describe(self) -> &'static str {
        match self {
            Self::Unary => "one request, one response",
            Self::ServerStreaming => "one request, a stream of responses",
            Self::ClientStreaming => "a stream of requests, one response",
            Self::Bidirectional => "a stream of requests and a stream of responses",
        }
    }

    /// `unary`, `server_streaming`…: the suffix of the runtime's `serve_*` and `call_*`.
    fn snake_name(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStreaming => "server_streaming",
            Self::ClientStreaming => "client_streaming",
            Self::Bidirectional => "bidirectional",
        }
    }
}

#[cfg(test)]
mod tests;
