//! The user's trait, rewritten so that every method's future is `Send`: `async fn f(…) -> R`
//! becomes `fn f(…) -> impl Future<Output = R> + Send`, which the user implements with a plain
//! `async fn`. Stream arguments and the returned stream get a `Send` bound if they lack one, and
//! stream arguments a `'static` one: the server hands over a `RequestStream`, which is both, and
//! a bidirectional impl can then move the request stream into the stream it returns.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, ReturnType, TypeImplTrait, TypeParamBound, parse_quote};

use super::Generator;
use crate::model::Method;
use crate::parse::{has_send, stream_bound};

impl Generator<'_> {
    pub(super) fn trait_def(&self) -> TokenStream {
        let service = self.service;
        let (attrs, vis, unsafety, trait_token, ident) = (
            &service.attrs,
            &service.vis,
            &service.unsafety,
            &service.trait_token,
            &service.ident,
        );
        let (colon_token, supertraits) = (&service.colon_token, &service.supertraits);
        let methods = service.methods.iter().map(trait_method);
        quote! {
            #(#attrs)*
            #vis #unsafety #trait_token #ident #colon_token #supertraits {
                #(#methods)*
            }
        }
    }
}

fn trait_method(method: &Method) -> TokenStream {
    let mut sig = method.sig.clone();
    sig.asyncness = None;
    for arg in &mut sig.inputs {
        if let FnArg::Typed(arg) = arg {
            AddBounds { lifetime: true }.visit_type_mut(&mut arg.ty);
        }
    }
    if let ReturnType::Type(_, ty) = &mut sig.output {
        AddBounds { lifetime: false }.visit_type_mut(ty);
    }
    let (ret, span) = match &sig.output {
        ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
        ReturnType::Default => (quote!(()), Span::call_site()),
    };
    // Spanned on the user's return type, so "future is not `Send`" errors point there.
    sig.output = syn::parse2(quote_spanned! {span=>
        -> impl ::core::future::Future<Output = #ret> + ::core::marker::Send
    })
    .unwrap_or(sig.output);
    let attrs = &method.attrs;
    // The user's `;`: with every token from the user, lints on the method point at it.
    let semi = method
        .semi_token
        .unwrap_or_else(|| syn::Token![;](method.ident.span()));
    quote! {
        #(#attrs)*
        #sig #semi
    }
}

/// Adds `+ ::core::marker::Send` to every `impl Stream<…>` without a `Send` bound, and with
/// `lifetime` also `+ 'static` where no lifetime bound or `use<…>` is written. After
/// validation the only `impl` types in a signature are the stream argument and the stream
/// in the `Ok` of the return type.
struct AddBounds {
    lifetime: bool,
}

impl VisitMut for AddBounds {
    fn visit_type_impl_trait_mut(&mut self, impl_trait: &mut TypeImplTrait) {
        if stream_bound(impl_trait).is_none() {
            return;
        }
        if !has_send(impl_trait) {
            impl_trait.bounds.push(parse_quote!(::core::marker::Send));
        }
        let outlives = impl_trait.bounds.iter().any(|bound| {
            matches!(
                bound,
                TypeParamBound::Lifetime(_) | TypeParamBound::PreciseCapture(_)
            )
        });
        if self.lifetime && !outlives {
            impl_trait.bounds.push(parse_quote!('static));
        }
    }
}
