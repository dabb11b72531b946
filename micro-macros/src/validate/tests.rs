//! The rules and their messages. Where each error points is checked by the UI tests
//! (`tests/ui/*.stderr` in the `micro` package), which see real spans.

use proc_macro2::TokenStream;
use quote::quote;

use super::show;
use crate::parse;

fn errors_with_args(args: TokenStream, item: TokenStream) -> Vec<String> {
    let service = parse::service(args, item).unwrap_or_else(|e| panic!("{e}"));
    match super::service(&service) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
    }
}

fn errors_of(item: TokenStream) -> Vec<String> {
    errors_with_args(TokenStream::new(), item)
}

/// The only error of `item`'s single method `m`.
fn error(method: &TokenStream) -> String {
    let mut errors = errors_of(quote!(trait Svc { #method }));
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.remove(0)
}

fn assert_message(method: &TokenStream, expected: &str) {
    let message = error(method);
    assert_eq!(message, expected);
}

#[test]
fn the_say_service_is_valid() {
    let errors = errors_of(quote! {
        pub trait Say {
            async fn hello(&self, name: String) -> Result<String, Status>;
            async fn stream(&self, req: SRequest)
                -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
            async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
            async fn bidirectional_stream(&self, reqs: impl Stream<Item = SRequest> + Send + Unpin)
                -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
            async fn add(&self, ctx: &Context, a: i32, b: i32) -> micro::Result<i32>;
            async fn explicit(self: &Self, items: micro::RequestStream<u8>)
                -> Result<impl Stream<Item = u8> + use<Self>, std::io::Error>;
            async fn constant(&self) -> Result<&'static str, Status>;
        }
    });
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn attribute_arguments() {
    let errors = errors_with_args(
        quote!(name = "x"),
        quote!(
            trait Svc {}
        ),
    );
    assert_eq!(
        errors,
        ["`#[micro::service]` takes no arguments: write `#[micro::service]`"]
    );
}

#[test]
fn trait_generics_and_where_clauses() {
    let errors = errors_of(quote!(
        trait Svc<'a, T: Clone>
        where
            T: Send,
        {
        }
    ));
    assert_eq!(
        errors,
        [
            "service traits cannot be generic: remove `<'a, T: Clone>` and use concrete types \
             (each argument and response needs one concrete type on the wire)",
            "remove the `where` clause: service traits are not generic (bounds on `Self` go \
             in the supertraits: `trait Svc: Send + Sync`)",
        ]
    );
    assert_eq!(
        errors_of(quote!(
            trait Svc<'a> {}
        )),
        [
            "service traits cannot have lifetime parameters: remove `<'a>`; arguments and \
             responses are owned values"
        ]
    );
}

#[test]
fn items_other_than_methods() {
    let errors = errors_of(quote! {
        trait Svc {
            type Item;
            const LIMIT: usize = 3;
            my_methods!();
        }
    });
    assert_eq!(
        errors,
        [
            "a service trait holds only `async fn` methods: remove `type Item` and use concrete \
             types in the signatures",
            "a service trait holds only `async fn` methods: move `const LIMIT` out of the trait",
            "macros are not expanded inside `#[micro::service]`: write the `async fn` methods out",
        ]
    );
}

#[test]
fn qualifiers() {
    assert_message(
        &quote!(
            fn hello(&self) -> Result<(), Status>;
        ),
        "micro methods are async: write `async fn hello(&self, …)`",
    );
    assert_message(
        &quote!(
            async unsafe fn hello(&self) -> Result<(), Status>;
        ),
        "remove `unsafe`: a remote caller cannot uphold a safety contract; \
         write `async fn hello(&self, …)`",
    );
    assert_message(
        &quote!(
            async extern "C" fn hello(&self) -> Result<(), Status>;
        ),
        "remove `extern \"C\"`: write `async fn hello(&self, …)`",
    );
    let errors = errors_of(quote!(
        trait Svc {
            const fn hello(&self) -> Result<(), Status>;
        }
    ));
    assert_eq!(
        errors,
        [
            "remove `const`: write `async fn hello(&self, …)`",
            "micro methods are async: write `async fn hello(&self, …)`",
        ]
    );
}

#[test]
fn receivers() {
    let cases = [
        (
            quote!(
                async fn f() -> Result<(), Status>;
            ),
            "micro methods take `&self` first: write `async fn f(&self, …)`",
        ),
        (
            quote!(
                async fn f(x: u8) -> Result<(), Status>;
            ),
            "micro methods take `&self` first: write `async fn f(&self, …)`",
        ),
        (
            quote!(
                async fn f(self) -> Result<(), Status>;
            ),
            "the server shares one service between calls: take `&self` instead of `self`",
        ),
        (
            quote!(
                async fn f(mut self) -> Result<(), Status>;
            ),
            "the server shares one service between calls: take `&self` instead of `self`",
        ),
        (
            quote!(
                async fn f(&mut self) -> Result<(), Status>;
            ),
            "calls run concurrently on one shared service, so `&mut self` cannot be served: \
             take `&self` and keep mutable state behind a lock or an atomic",
        ),
        (
            quote!(
                async fn f(&'static self) -> Result<(), Status>;
            ),
            "remove the lifetime: take `&self`",
        ),
        (
            quote!(
                async fn f(self: Box<Self>) -> Result<(), Status>;
            ),
            "the server calls your service through a shared reference: take `&self` instead \
             of `self: Box<Self>`",
        ),
    ];
    for (method, expected) in cases {
        assert_message(&method, expected);
    }
}

#[test]
fn method_generics_default_bodies_and_variadics() {
    assert_message(
        &quote!(
            async fn f<T: Serialize>(&self, x: T) -> Result<(), Status>;
        ),
        "micro methods cannot be generic: remove `<T: Serialize>` and use concrete types (each \
         argument and response needs one concrete type on the wire)",
    );
    assert_message(
        &quote!(
            async fn f<'a>(&self) -> Result<(), Status>;
        ),
        "micro methods cannot have lifetime parameters: remove `<'a>`; arguments and responses \
         are owned values",
    );
    assert_message(
        &quote!(
            async fn f(&self) -> Result<(), Status>
            where
                Self: Sized;
        ),
        "remove the `where` clause: micro methods are not generic",
    );
    let errors = errors_of(quote! {
        pub trait Say {
            async fn f(&self) -> Result<(), Status> { Ok(()) }
        }
    });
    assert_eq!(
        errors,
        [
            "remove the default body: declare `async fn f(…) -> …;` here and implement it in \
             your `impl Say for …`"
        ]
    );
    assert_message(
        &quote!(
            async fn f(&self, ...) -> Result<(), Status>;
        ),
        "remove the variadic `...`: take the values as one argument, e.g. `values: Vec<T>`",
    );
}

#[test]
fn argument_patterns() {
    assert_message(
        &quote!(
            async fn f(&self, (a, b): (i32, i32)) -> Result<(), Status>;
        ),
        "name the argument with a plain identifier: write `name: (i32, i32)`",
    );
    assert_message(
        &quote!(
            async fn f(&self, _: String) -> Result<(), Status>;
        ),
        "name the argument (its name is part of the wire format): write `name: String`",
    );
    assert_message(
        &quote!(
            async fn f(&self, mut names: Vec<String>) -> Result<(), Status>;
        ),
        "remove `mut`: write `names: Vec<String>` here (`mut` belongs in your impl)",
    );
}

#[test]
fn context_parameters() {
    assert_message(
        &quote!(
            async fn add(&self, a: i32, ctx: &micro::Context) -> Result<(), Status>;
        ),
        "the context parameter comes first, right after `&self`: write \
         `async fn add(&self, ctx: &micro::Context, …)`",
    );
    assert_message(
        &quote!(
            async fn add(&self, ctx: Context) -> Result<(), Status>;
        ),
        "take the context by shared reference: write `ctx: &Context`",
    );
    assert_message(
        &quote!(
            async fn add(&self, ctx: &mut Context) -> Result<(), Status>;
        ),
        "take the context by shared reference: write `ctx: &Context`",
    );
}

#[test]
fn borrowed_arguments() {
    assert_message(
        &quote!(
            async fn f(&self, name: &str) -> Result<(), Status>;
        ),
        "arguments are received by value: use an owned type such as `String`",
    );
    assert_message(
        &quote!(
            async fn f(&self, bytes: &[u8]) -> Result<(), Status>;
        ),
        "arguments are received by value: use an owned type such as `Vec<u8>`",
    );
    assert_message(
        &quote!(
            async fn f(&self, req: &'static SRequest) -> Result<(), Status>;
        ),
        "arguments are received by value: use an owned type such as `SRequest`",
    );
    assert_message(
        &quote!(
            async fn f(&self, names: Vec<&str>) -> Result<(), Status>;
        ),
        "arguments are received by value: use an owned type such as `String`",
    );
}

#[test]
fn impl_trait_arguments() {
    assert_message(
        &quote!(
            async fn f(&self, x: impl Display) -> Result<(), Status>;
        ),
        "`impl Trait` arguments must be streams: write `impl Stream<Item = T> + Send + Unpin`, \
         or take a concrete type",
    );
    assert_message(
        &quote!(
            async fn f(&self, x: Vec<impl Display>) -> Result<(), Status>;
        ),
        "`impl Trait` is only supported as a whole stream argument (`impl Stream<Item = T>`): \
         use a concrete type here",
    );
    assert_message(
        &quote!(
            async fn f(&self, x: impl Stream<Item = &str>) -> Result<(), Status>;
        ),
        "arguments are received by value: use an owned type such as `String`",
    );
}

#[test]
fn stream_arguments() {
    assert_message(
        &quote! {
            async fn f(&self, a: impl Stream<Item = u8> + Send, b: RequestStream<u8>)
                -> Result<(), Status>;
        },
        "a method takes at most one stream argument: merge the streams into one \
         `impl Stream<Item = …>`, or split the method in two",
    );
    assert_message(
        &quote!(
            async fn f(&self, a: impl Stream + Send) -> Result<(), Status>;
        ),
        "name the stream's item type: write `impl Stream<Item = T>`",
    );
    assert_message(
        &quote!(
            async fn f(&self, a: RequestStream) -> Result<(), Status>;
        ),
        "name the stream's item type: write `RequestStream<T>`",
    );
}

#[test]
fn too_many_arguments() {
    let mut method = quote!(
        async fn f(&self);
    )
    .to_string();
    let args: Vec<String> = (0..13).map(|i| format!("a{i}: u8")).collect();
    method = method.replace("& self", &format!("&self, {}", args.join(", ")));
    method = method.replace(';', " -> Result<(), Status>;");
    let method: TokenStream = method.parse().unwrap_or_else(|e| panic!("{e}"));
    assert_message(
        &method,
        "at most 12 plain arguments are supported: group them into a struct and take that",
    );
}

#[test]
fn return_types() {
    let cases = [
        (
            quote!(
                async fn hello(&self);
            ),
            "micro methods return a `Result`: write `async fn hello(…) -> Result<T, Status>` \
             (or `-> micro::Result<T>`)",
        ),
        (
            quote!(
                async fn hello(&self) -> String;
            ),
            "micro methods return a `Result`: write `Result<String, Status>` \
             (or `micro::Result<String>`)",
        ),
        (
            quote!(
                async fn hello(&self) -> ();
            ),
            "micro methods return a `Result`: write `Result<(), Status>`",
        ),
        (
            quote!(
                async fn hello(&self) -> impl Stream<Item = u8> + Send + 'static;
            ),
            "a returned stream goes inside a `Result`: write \
             `Result<impl Stream<Item = u8> + Send + 'static, Status>`",
        ),
        (
            quote!(
                async fn hello(&self) -> Result<u8, Status, Extra>;
            ),
            "a `Result` takes the response type and the error type: write `Result<T, Status>` \
             or `micro::Result<T>`",
        ),
        (
            quote!(
                async fn hello(&self) -> Result<impl Serialize, Status>;
            ),
            "`impl Trait` in the return type is only supported as the stream in \
             `Result<impl Stream<Item = T> + Send, E>`: use a concrete type here",
        ),
        (
            quote!(
                async fn hello(&self) -> Result<u8, impl Into<Status>>;
            ),
            "`impl Trait` in the return type is only supported as the stream in \
             `Result<impl Stream<Item = T> + Send, E>`: use a concrete type here",
        ),
        (
            quote!(
                async fn hello(&self) -> Result<&str, Status>;
            ),
            "responses are sent by value: return an owned type such as `String`",
        ),
    ];
    for (method, expected) in cases {
        assert_message(&method, expected);
    }
}

#[test]
fn stream_returns() {
    // A returned stream may borrow `self` and the arguments: the server drains it inside the
    // call's own future.
    assert!(
        errors_of(quote!(
            trait Svc {
                async fn s(&self) -> Result<impl Stream<Item = u8> + Send, Status>;
            }
        ))
        .is_empty()
    );
    assert_message(
        &quote!(
            async fn s(&self) -> Result<impl Stream + Send + 'static, Status>;
        ),
        "name the stream's item type: write `impl Stream<Item = Result<T, Status>>`",
    );
    assert_message(
        &quote!(
            async fn s(&self) -> Result<impl Stream<Item = Vec<impl Display>> + 'static, Status>;
        ),
        "`impl Trait` in the return type is only supported as the stream in \
         `Result<impl Stream<Item = T> + Send, E>`: use a concrete type here",
    );
    assert_message(
        &quote!(
            async fn s(&self) -> Result<impl Stream<Item = Result<u8, E, X>> + 'static, Status>;
        ),
        "a stream item `Result` takes the item type and the error type: write \
         `Result<T, Status>` or `micro::Result<T>`",
    );
}

#[test]
fn names_the_client_generates() {
    let errors = errors_of(quote! {
        pub trait Chat {
            async fn talk(&self, lines: impl Stream<Item = String>)
                -> Result<impl Stream<Item = String> + 'static, Status>;
            async fn talk_duplex(&self) -> Result<(), Status>;
            async fn connect(&self) -> Result<(), Status>;
        }
    });
    assert_eq!(
        errors,
        [
            "rename `talk_duplex`: `ChatClient` generates `talk_duplex` for the bidirectional \
             method `talk`",
            "rename `connect`: the generated `ChatClient` has its own `connect`",
        ]
    );
}

#[test]
fn every_error_of_a_trait_at_once() {
    let errors = errors_of(quote! {
        pub trait Say {
            fn hello(&self, name: String) -> Result<String, Status>;
            async fn bye(&mut self) -> Result<(), Status>;
            async fn echo(&self, text: &str) -> String;
            async fn two(&self, a: impl Stream<Item = u8>, b: impl Stream<Item = u8>)
                -> Result<(), Status>;
            async fn ok(&self) -> Result<(), Status>;
            async fn generic<T>(&self, t: T) -> Result<(), Status>;
        }
    });
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn show_writes_tokens_as_people_do() {
    let cases = [
        (quote!(&micro::Context), "&micro::Context"),
        (quote!(&'a mut [u8]), "&'a mut [u8]"),
        (
            quote!(impl futures::Stream<Item = Result<T, E>> + Send + 'static),
            "impl futures::Stream<Item = Result<T, E>> + Send + 'static",
        ),
        (quote!(Vec<(u8, String)>), "Vec<(u8, String)>"),
        (quote!(<'a, T: Clone>), "<'a, T: Clone>"),
        (quote!(self: Box<Self>), "self: Box<Self>"),
        (quote!(Box<dyn Fn(u8) -> u8>), "Box<dyn Fn(u8) -> u8>"),
        (quote!([u8; 4]), "[u8; 4]"),
        (quote!(extern "C"), "extern \"C\""),
        (quote!(<T as Trait>::Out), "<T as Trait>::Out"),
    ];
    for (tokens, expected) in cases {
        assert_eq!(show(tokens), expected);
    }
}
