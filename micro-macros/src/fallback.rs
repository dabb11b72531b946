//! What the attribute emits when the trait has errors: the user's trait unchanged (`async fn`s
//! in traits are valid Rust), so the user's impl still type-checks and IDEs keep working,
//! followed by one `compile_error!` per error, each at its own span.

use proc_macro2::TokenStream;

pub(crate) fn emit(mut input: TokenStream, error: &syn::Error) -> TokenStream {
    input.extend(error.to_compile_error());
    input
}
