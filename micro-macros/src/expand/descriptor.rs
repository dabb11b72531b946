//! `SayClient::DESCRIPTOR`: the service as it is known on the wire. It lives on the client
//! type because that type is not generic, so `&SayClient::DESCRIPTOR` is a `'static` constant
//! that the server's `descriptor()` can hand out.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Generator, doc};

impl Generator<'_> {
    pub(super) fn descriptor(&self) -> TokenStream {
        let (vis, name, client) = (&self.service.vis, &self.name, &self.client);
        let methods = self.methods.iter().map(|names| {
            let (method_name, full_name) = (&names.name, &names.full_name);
            let kind = format_ident!("{}", names.method.kind.name());
            quote! {
                ::micro::MethodDescriptor {
                    name: #method_name,
                    full_name: #full_name,
                    kind: ::micro::MethodKind::#kind,
                }
            }
        });
        let doc = doc(&format!(
            "The `{name}` service as it is known on the wire: its name and each method's name \
             and call kind."
        ));
        quote! {
            #[allow(dead_code)]
            impl #client {
                #doc
                #vis const DESCRIPTOR: ::micro::ServiceDescriptor = ::micro::ServiceDescriptor {
                    name: #name,
                    methods: &[#(#methods),*],
                };
            }
        }
    }
}
