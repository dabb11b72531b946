//! `SayClient`: one method per trait method, with the same arguments minus the context,
//! returning the runtime's call type for the method's kind; plus `x_duplex` for each
//! bidirectional method `x`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Generator, MethodNames, doc};
use crate::model::Kind;

impl Generator<'_> {
    pub(super) fn client_struct(&self) -> TokenStream {
        let (vis, name, client) = (&self.service.vis, &self.name, &self.client);
        let doc = doc(&format!(
            "A client of the `{name}` service: one method per method of [`{}`], each \
             returning a call to `.await`.\n\nCloning is cheap: clones share one connection.",
            self.service.ident
        ));
        quote! {
            #doc
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            // Generated items may go unused, e.g. in a binary that is only a server.
            #[allow(dead_code)]
            #vis struct #client {
                client: ::micro::Client,
            }
        }
    }

    pub(super) fn client_impl(&self) -> TokenStream {
        let (vis, name) = (&self.service.vis, &self.name);
        let connect_doc = doc(&format!(
            "Connects to a `{name}` server at `addr` (TCP).\n\n\
             # Errors\n\n\
             The `Status` of a failed connection or handshake, as from `micro::Client::connect`."
        ));
        let new_doc = doc(&format!(
            "A `{name}` client on an existing connection, which it shares with other clients."
        ));
        let client_doc = doc("The connection this client calls over.");
        let methods = self.methods.iter().map(|names| self.client_method(names));
        let client = &self.client;
        quote! {
            #[allow(dead_code)]
            impl #client {
                #connect_doc
                #vis async fn connect<A: ::micro::__private::ToSocketAddrs>(
                    addr: A,
                ) -> ::core::result::Result<Self, ::micro::Status> {
                    ::core::result::Result::Ok(Self::new(::micro::Client::connect(addr).await?))
                }

                #new_doc
                #[must_use]
                #vis fn new(client: ::micro::Client) -> Self {
                    Self { client }
                }

                #client_doc
                #[must_use]
                #vis fn client(&self) -> &::micro::Client {
                    &self.client
                }

                #(#methods)*
            }
        }
    }

    /// The call method, and for a bidirectional method also its `_duplex` twin.
    fn client_method(&self, names: &MethodNames<'_>) -> TokenStream {
        let method = names.method;
        let vis = &self.service.vis;
        let (ident, full_name, arg_names, tuple) = (
            &method.ident,
            &names.full_name,
            &names.arg_names,
            &names.arg_tuple,
        );
        let user_docs: Vec<_> = method
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc"))
            .collect();
        let docs = if user_docs.is_empty() {
            doc(&format!("Calls `{full_name}`: {}.", method.kind.describe()))
        } else {
            quote!(#(#user_docs)*)
        };

        // The user's order, with the stream argument among the plain ones.
        let mut params: Vec<TokenStream> = method
            .args
            .iter()
            .map(|arg| {
                let (ident, ty) = (&arg.ident, &arg.ty);
                quote!(#ident: #ty)
            })
            .collect();
        let plain_params = params.clone();
        let mut stream = None;
        if let Some(arg) = &method.stream_arg {
            let (ident, item) = (&arg.ident, &arg.item_ty);
            params.insert(
                arg.position,
                quote!(#ident: impl ::micro::Stream<Item = #item> + ::core::marker::Send + 'static),
            );
            stream = Some(ident);
        }

        let response = &method.ret.ty;
        let request = method.stream_arg.as_ref().map(|arg| &arg.item_ty);
        let ret = match method.kind {
            Kind::Unary => quote!(::micro::client::UnaryCall<#response>),
            Kind::ServerStreaming => quote!(::micro::client::ServerStreamingCall<#response>),
            Kind::ClientStreaming => {
                quote!(::micro::client::ClientStreamingCall<#request, #response>)
            }
            Kind::Bidirectional => {
                quote!(::micro::client::BidiStreamingCall<#request, #response>)
            }
        };
        let call = format_ident!("call_{}", method.kind.snake_name());
        let stream = stream.map(|ident| quote!(, #ident));
        let call_method = quote! {
            #docs
            #vis fn #ident(&self #(, #params)*) -> #ret {
                ::micro::__private::#call(
                    &self.client,
                    #full_name,
                    &[#(#arg_names),*],
                    #tuple #stream
                )
            }
        };
        if method.kind != Kind::Bidirectional {
            return call_method;
        }

        let duplex = &names.duplex;
        let duplex_doc = doc(&format!(
            "Opens `{}` as a duplex handle: `send` requests, `close_send` when done, and \
             `recv` the responses.",
            names.name
        ));
        quote! {
            #call_method

            #duplex_doc
            #vis fn #duplex(&self #(, #plain_params)*) -> ::micro::client::DuplexCall<#request, #response> {
                ::micro::__private::call_duplex(
                    &self.client,
                    #full_name,
                    &[#(#arg_names),*],
                    #tuple
                )
            }
        }
    }
}
