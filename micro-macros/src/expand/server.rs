//! `SayServer<T>`: wraps the user's implementation and dispatches each call, by the method's
//! index, to the runtime's `serve_*` function for its kind.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};

use super::{Generator, MethodNames, doc};
use crate::model::Kind;

impl Generator<'_> {
    pub(super) fn server_struct(&self) -> TokenStream {
        let (vis, trait_ident, server) = (&self.service.vis, &self.service.ident, &self.server);
        let doc = doc(&format!(
            "Serves a [`{trait_ident}`] implementation: pass `{server}::new(service)` to \
             `micro::Server::builder().add_service(…)`."
        ));
        quote! {
            #doc
            // Generated items may go unused, e.g. in a binary that is only a client.
            #[allow(dead_code)]
            #vis struct #server<T> {
                inner: ::std::sync::Arc<T>,
            }
        }
    }

    pub(super) fn server_impl(&self) -> TokenStream {
        let (vis, server) = (&self.service.vis, &self.server);
        let new_doc = doc("Wraps `service`; every call shares it.");
        let from_arc_doc = doc("Serves a service that is already shared behind an `Arc`.");
        let get_ref_doc = doc("The wrapped service.");
        quote! {
            #[allow(dead_code)]
            impl<T> #server<T> {
                #new_doc
                #[must_use]
                #vis fn new(service: T) -> Self {
                    Self { inner: ::std::sync::Arc::new(service) }
                }

                #from_arc_doc
                #[must_use]
                #vis fn from_arc(service: ::std::sync::Arc<T>) -> Self {
                    Self { inner: service }
                }

                #get_ref_doc
                #[must_use]
                #vis fn get_ref(&self) -> &T {
                    &self.inner
                }
            }
        }
    }

    /// By hand rather than derived: clones share the `Arc`, so `T` need not be `Clone`.
    pub(super) fn server_clone_impl(&self) -> TokenStream {
        let server = &self.server;
        quote! {
            #[automatically_derived]
            impl<T> ::core::clone::Clone for #server<T> {
                fn clone(&self) -> Self {
                    Self { inner: ::core::clone::Clone::clone(&self.inner) }
                }
            }
        }
    }

    /// By hand rather than derived: `T` need not be `Debug`.
    pub(super) fn server_debug_impl(&self) -> TokenStream {
        let server = &self.server;
        let name = server.to_string();
        quote! {
            #[automatically_derived]
            impl<T> ::core::fmt::Debug for #server<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#name).finish_non_exhaustive()
                }
            }
        }
    }

    pub(super) fn service_impl(&self) -> TokenStream {
        let (trait_ident, server, client) = (&self.service.ident, &self.server, &self.client);
        let (service, call, method) = (&self.service_local, &self.call_local, &self.method_local);
        let share = (!self.methods.is_empty())
            .then(|| quote!(let #service = ::core::clone::Clone::clone(&self.inner);));
        let arms = self.methods.iter().map(|names| self.server_arm(names));
        quote! {
            #[automatically_derived]
            impl<T> ::micro::Service for #server<T>
            where
                T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                fn descriptor(&self) -> &'static ::micro::ServiceDescriptor {
                    &#client::DESCRIPTOR
                }

                fn call(
                    &self,
                    #method: usize,
                    #call: ::micro::__private::ServerCall,
                ) -> ::micro::__private::HandlerFuture {
                    #share
                    match #method {
                        #(#arms)*
                        _ => ::micro::__private::unknown_method(#call),
                    }
                }
            }
        }
    }

    /// `0usize => ::micro::__private::serve_unary(call, &["name"], move |…| async move { … }),`
    ///
    /// Streaming replies are drained by `replies.send(…)` inside the same future that owns the
    /// service, so the stream a method returns may borrow `&self` and its arguments.
    fn server_arm(&self, names: &MethodNames<'_>) -> TokenStream {
        let method = names.method;
        let (service, call, replies) = (&self.service_local, &self.call_local, &self.replies_local);
        let ctx = if method.context {
            self.ctx_local.clone()
        } else {
            format_ident!("_{}", self.ctx_local)
        };
        let (index, arg_names, pattern, types) = (
            &names.index,
            &names.arg_names,
            &names.arg_tuple,
            &names.arg_types,
        );
        let stream_param = method.stream_arg.as_ref().map(|stream| {
            let (ident, item) = (&stream.ident, &stream.item_ty);
            quote!(, #ident: ::micro::RequestStream<#item>)
        });

        // The user's order: the context first, the stream argument among the plain ones.
        let mut call_args: Vec<TokenStream> = method
            .args
            .iter()
            .map(|arg| arg.ident.to_token_stream())
            .collect();
        if let Some(stream) = &method.stream_arg {
            call_args.insert(stream.position, stream.ident.to_token_stream());
        }
        if method.context {
            call_args.insert(0, quote!(&#ctx));
        }
        let (trait_ident, ident) = (&self.service.ident, &method.ident);
        // Spanned on the method's name, so a mismatch with the user's impl points there.
        let invoke = quote_spanned! {ident.span()=>
            #trait_ident::#ident(&*#service #(, #call_args)*).await
        };
        let streams_back = matches!(method.kind, Kind::ServerStreaming | Kind::Bidirectional);
        let (replies_param, body) = if !streams_back {
            (None, invoke)
        } else if method.ret.item_fallible {
            (
                Some(quote!(, #replies: ::micro::__private::Replies)),
                quote!(#replies.send(#invoke).await),
            )
        } else {
            (
                Some(quote!(, #replies: ::micro::__private::Replies)),
                quote!(#replies.send(::core::result::Result::map(#invoke, ::micro::__private::ok_items)).await),
            )
        };
        let serve = format_ident!("serve_{}", method.kind.snake_name());
        quote! {
            #index => ::micro::__private::#serve(
                #call,
                &[#(#arg_names),*],
                move |#ctx: ::micro::Context, #pattern: #types #stream_param #replies_param| async move {
                    #body
                },
            ),
        }
    }
}
