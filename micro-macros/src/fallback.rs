//! What the attribute emits when the trait has errors: the user's trait (`async fn`s in traits
//! are valid Rust), so the user's impl still type-checks and IDEs keep working, followed by one
//! `compile_error!` per error, each at its own span.
//!
//! The trait is emitted as written except for what rustc would reject on its own after we
//! already did (a `const fn`, a C variadic, a pattern in a method without a body): removing
//! those spares the user a second error for the same token and changes no signature an impl
//! is checked against.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, ItemTrait, Pat, TraitItem, parse_quote_spanned};

pub(crate) fn emit(input: TokenStream, error: &syn::Error) -> TokenStream {
    let mut output = match syn::parse2::<ItemTrait>(input.clone()) {
        Ok(mut item) => {
            for item in &mut item.items {
                if let TraitItem::Fn(method) = item {
                    if method.default.is_none() {
                        sanitize(&mut method.sig);
                    }
                }
            }
            item.into_token_stream()
        }
        Err(_) => input,
    };
    output.extend(error.to_compile_error());
    output
}

fn sanitize(sig: &mut syn::Signature) {
    sig.constness = None;
    sig.variadic = None;
    for arg in &mut sig.inputs {
        let FnArg::Typed(arg) = arg else { continue };
        match &mut *arg.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => {
                pat.by_ref = None;
                pat.mutability = None;
            }
            Pat::Wild(_) => {}
            other => {
                let span = other.span();
                *other = parse_quote_spanned!(span=> _);
            }
        }
    }
}
