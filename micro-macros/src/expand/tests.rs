use std::path::Path;
use std::{env, fs};

use proc_macro2::TokenStream;
use quote::quote;

use super::service;

/// The trait `docs/expanded-say.rs` shows the expansion of (the spec's example).
const SAY: &str = r"#[micro::service]
pub trait Say {
    /// unary
    async fn hello(&self, name: String) -> Result<String, Status>;
    /// server streaming: the return type is a stream
    async fn stream(&self, req: SRequest)
        -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
    /// client streaming: an argument is a stream
    async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
    /// bidirectional: both
    async fn bidirectional_stream(&self, reqs: impl Stream<Item = SRequest> + Send + Unpin)
        -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
    /// several plain args and an optional leading context
    async fn add(&self, ctx: &Context, a: i32, b: i32) -> micro::Result<i32>;
}
";

/// Expands `trait_src` (without its `#[micro::service]` line) and pretty-prints the result.
fn expand(trait_src: &str) -> String {
    let input: TokenStream = trait_src
        .trim_start_matches("#[micro::service]")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    pretty(service(TokenStream::new(), input))
}

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).unwrap_or_else(|e| panic!("{e}"));
    prettyplease::unparse(&file)
}

/// `docs/expanded-say.rs` is what the macro generates for [`SAY`]; `MICRO_BLESS=1` rewrites it.
#[test]
fn say_expansion_matches_docs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/expanded-say.rs");
    let mut actual = String::from(
        "// What `#[micro::service]` generates for the trait below, pretty-printed.\n\
         // Checked by a test in micro-macros/src/expand/tests.rs; to update it after changing\n\
         // the macro, run `MICRO_BLESS=1 cargo test -p micro-macros` and review the diff.\n\
         //\n",
    );
    for line in SAY.lines() {
        actual.push_str(format!("// {line}").trim_end());
        actual.push('\n');
    }
    actual.push('\n');
    actual.push_str(&expand(SAY));

    if env::var_os("MICRO_BLESS").is_some() {
        fs::write(&path, &actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} is out of date (first difference at line {}): run \
             `MICRO_BLESS=1 cargo test -p micro-macros` and review the diff",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn errors_keep_the_trait_unchanged() {
    let input = quote! {
        pub trait Say {
            fn hello(&self, name: String) -> Result<String, Status>;
            async fn bye(&mut self) -> Result<(), Status>;
        }
    };
    let output = pretty(service(TokenStream::new(), input.clone()));
    let expected_trait = pretty(input);
    assert!(output.starts_with(&expected_trait), "{output}");
    assert_eq!(output.matches("compile_error!").count(), 2, "{output}");
    assert!(!output.contains("SayServer"), "{output}");
}

#[test]
fn errors_drop_only_what_rustc_would_reject_again() {
    let input = quote! {
        pub trait Say {
            const fn hello(&self, (a, b): (i32, i32), mut c: u8, ...) -> Result<String, Status>;
        }
    };
    let output = pretty(service(TokenStream::new(), input));
    assert!(
        output.starts_with(
            "pub trait Say {\n    fn hello(&self, _: (i32, i32), c: u8) -> Result<String, Status>;\n}"
        ),
        "{output}"
    );
}

#[test]
fn non_trait_input_is_kept() {
    let output = pretty(service(
        TokenStream::new(),
        quote!(
            pub struct Say;
        ),
    ));
    assert!(output.starts_with("pub struct Say;"), "{output}");
    assert!(output.contains("compile_error!"), "{output}");
}

#[test]
fn infallible_stream_items_are_wrapped_in_ok() {
    let output = expand(
        "trait Ticks {
            async fn ticks(&self, every: u64) -> Result<impl Stream<Item = u64> + 'static, Status>;
        }",
    );
    assert!(
        output.contains("::core::result::Result::map(")
            && output.contains("::micro::__private::ok_items"),
        "{output}"
    );
    assert!(
        output.contains("::micro::client::ServerStreamingCall<u64>"),
        "{output}"
    );
    // The missing `Send` is added in the trait the user implements.
    assert!(
        output.contains("impl Stream<Item = u64> + 'static + ::core::marker::Send"),
        "{output}"
    );
}

#[test]
fn stream_argument_keeps_its_place() {
    let output = expand(
        "pub(crate) trait Upload {
            async fn put(&self, ctx: &Context, name: String, chunks: RequestStream<Vec<u8>>, mode: u32)
                -> Result<u64, Status>;
        }",
    );
    assert!(
        output.contains("Upload::put(&*service, &ctx, name, chunks, mode).await"),
        "{output}"
    );
    assert!(
        output.contains(
            "pub(crate) fn put(\n        &self,\n        name: String,\n        chunks: impl ::micro::Stream<Item = Vec<u8>>"
        ),
        "{output}"
    );
    assert!(
        output.contains("&[\"name\", \"mode\"],\n            (name, mode),\n            chunks,"),
        "{output}"
    );
    assert!(
        output.contains("ClientStreamingCall<Vec<u8>, u64>"),
        "{output}"
    );
}

#[test]
fn raw_identifiers_are_unrawed_on_the_wire() {
    let output = expand(
        "pub trait r#Match {
            async fn r#type(&self, r#in: Vec<u8>) -> Result<impl Stream<Item = micro::Result<u8>> + Send + 'static, Status>;
            async fn r#loop(&self, r#in: impl Stream<Item = u8>) -> Result<impl Stream<Item = u8> + 'static, Status>;
        }",
    );
    for expected in [
        "name: \"Match\"",
        "full_name: \"Match.type\"",
        "&[\"in\"]",
        "pub struct MatchServer<T>",
        "pub struct MatchClient",
        "pub fn r#type(&self, r#in: Vec<u8>)",
        "pub fn loop_duplex(&self)",
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
}

#[test]
fn an_empty_service_shares_nothing() {
    let output = expand("pub trait Nothing {}");
    assert!(!output.contains("let service = self.inner"), "{output}");
    assert!(output.contains("methods: &[]"), "{output}");
}
