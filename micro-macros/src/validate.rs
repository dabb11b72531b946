//! The signature rules. Every error of a trait is collected (a trait with five bad methods
//! gets five errors in one build), each spanned on the offending tokens, each saying what to
//! write instead.

use std::fmt::Display;

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{Generics, TraitItem, Type, TypeImplTrait, TypeReference};

use crate::model::{Kind, Method, Output, Param, ParamKind, Receiver, Service, StreamTy};
use crate::parse::{ResultShape, peel, result_shape};

/// Plain arguments travel as one tuple; the runtime decodes tuples of up to 12.
pub(crate) const MAX_ARGS: usize = 12;

/// Names the generated client already uses for its own items.
const CLIENT_ITEMS: [&str; 4] = ["connect", "new", "client", "DESCRIPTOR"];

/// Checks the whole trait; `Err` holds every error found.
pub(crate) fn service(service: &Service) -> syn::Result<()> {
    let mut errors = Errors::default();
    if !service.args.is_empty() {
        errors.push(
            &service.args,
            "`#[micro::service]` takes no arguments: write `#[micro::service]`",
        );
    }
    let supertraits = format!(
        " (bounds on `Self` go in the supertraits: `trait {}: Send + Sync`)",
        service.ident.unraw()
    );
    generics(
        &service.generics,
        "service traits",
        &supertraits,
        &mut errors,
    );
    for item in &service.others {
        other_item(item, &mut errors);
    }
    for method in &service.methods {
        self::method(service, method, &mut errors);
    }
    errors.finish()
}

/// Errors collected so far, combined into one `syn::Error` at the end (serde's `Ctxt`).
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// An error spanning `tokens` (first to last token).
    fn push(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn push_at(&mut self, span: Span, message: impl Display) {
        self.add(syn::Error::new(span, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// `what` names the generic thing in messages; `where_hint` ends the `where` clause message.
fn generics(generics: &Generics, what: &str, where_hint: &str, errors: &mut Errors) {
    if !generics.params.is_empty() {
        let only_lifetimes = generics.lifetimes().count() == generics.params.len();
        let message = if only_lifetimes {
            format!(
                "{what} cannot have lifetime parameters: remove `{}`; arguments and \
                 responses are owned values",
                show(generics)
            )
        } else {
            format!(
                "{what} cannot be generic: remove `{}` and use concrete types (each argument \
                 and response needs one concrete type on the wire)",
                show(generics)
            )
        };
        errors.push(generics, message);
    }
    if let Some(where_clause) = &generics.where_clause {
        errors.push(
            where_clause,
            format!("remove the `where` clause: {what} are not generic{where_hint}"),
        );
    }
}

fn other_item(item: &TraitItem, errors: &mut Errors) {
    match item {
        TraitItem::Const(item) => {
            let (const_token, ident) = (&item.const_token, &item.ident);
            errors.push(
                quote!(#const_token #ident),
                format!(
                    "a service trait holds only `async fn` methods: move `const {ident}` out \
                     of the trait"
                ),
            );
        }
        TraitItem::Type(item) => {
            let (type_token, ident) = (&item.type_token, &item.ident);
            errors.push(
                quote!(#type_token #ident),
                format!(
                    "a service trait holds only `async fn` methods: remove `type {ident}` and \
                     use concrete types in the signatures"
                ),
            );
        }
        TraitItem::Macro(item) => {
            let (path, bang) = (&item.mac.path, &item.mac.bang_token);
            errors.push(
                quote!(#path #bang),
                "macros are not expanded inside `#[micro::service]`: write the `async fn` \
                 methods out",
            );
        }
        other => errors.push(
            other,
            "a service trait holds only `async fn` methods: remove this item",
        ),
    }
}

fn method(service: &Service, method: &Method, errors: &mut Errors) {
    let sig = &method.sig;
    let name = method.ident.unraw();
    let write_fn = format!("write `async fn {name}(&self, …)`");

    if let Some(const_token) = &sig.constness {
        errors.push(const_token, format!("remove `const`: {write_fn}"));
    }
    if sig.asyncness.is_none() {
        errors.push(sig.fn_token, format!("micro methods are async: {write_fn}"));
    }
    if let Some(unsafe_token) = &sig.unsafety {
        errors.push(
            unsafe_token,
            format!("remove `unsafe`: a remote caller cannot uphold a safety contract; {write_fn}"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, format!("remove `{}`: {write_fn}", show(abi)));
    }
    names(service, method, errors);
    generics(&sig.generics, "micro methods", "", errors);
    receiver(method, &write_fn, errors);
    params(method, errors);
    if let Some(variadic) = &sig.variadic {
        errors.push(
            variadic,
            "remove the variadic `...`: take the values as one argument, e.g. `values: Vec<T>`",
        );
    }
    output(method, errors);
    if let Some(body) = &method.default {
        errors.push_at(
            body.brace_token.span.open(),
            format!(
                "remove the default body: declare `async fn {name}(…) -> …;` here and \
                 implement it in your `impl {} for …`",
                service.ident
            ),
        );
    }
}

/// Names the generated client would use twice.
fn names(service: &Service, method: &Method, errors: &mut Errors) {
    let name = method.ident.unraw().to_string();
    let client = format!("{}Client", service.ident.unraw());
    if CLIENT_ITEMS.contains(&name.as_str()) {
        errors.push(
            &method.ident,
            format!("rename `{name}`: the generated `{client}` has its own `{name}`"),
        );
    }
    if let Some(base) = name.strip_suffix("_duplex") {
        let bidirectional = service
            .methods
            .iter()
            .any(|other| other.kind == Kind::Bidirectional && other.ident.unraw() == base);
        if bidirectional {
            errors.push(
                &method.ident,
                format!(
                    "rename `{name}`: `{client}` generates `{name}` for the bidirectional \
                     method `{base}`"
                ),
            );
        }
    }
}

fn receiver(method: &Method, write_fn: &str, errors: &mut Errors) {
    match &method.receiver {
        Receiver::Ref => {}
        Receiver::Missing => {
            let message = format!("micro methods take `&self` first: {write_fn}");
            match method.sig.inputs.first() {
                Some(first) => errors.push(first, message),
                None => errors.push_at(method.sig.paren_token.span.join(), message),
            }
        }
        Receiver::Other(receiver) => {
            let message = if receiver.colon_token.is_some() {
                format!(
                    "the server calls your service through a shared reference: take `&self` \
                     instead of `{}`",
                    show(receiver)
                )
            } else if receiver.mutability.is_some() && receiver.reference.is_some() {
                "calls run concurrently on one shared service, so `&mut self` cannot be \
                 served: take `&self` and keep mutable state behind a lock or an atomic"
                    .to_owned()
            } else if receiver.reference.is_some() {
                "remove the lifetime: take `&self`".to_owned()
            } else {
                "the server shares one service between calls: take `&self` instead of `self`"
                    .to_owned()
            };
            errors.push(receiver, message);
        }
    }
}

fn params(method: &Method, errors: &mut Errors) {
    let name = method.ident.unraw();
    let mut streams = 0;
    let mut plain = 0;
    for (index, param) in method.params.iter().enumerate() {
        if param.ident.is_none() {
            pattern(param, errors);
        }
        match &param.kind {
            ParamKind::Context if index > 0 => {
                let ident = param
                    .ident
                    .as_ref()
                    .map_or("ctx".to_owned(), ToString::to_string);
                errors.push(
                    &param.ty,
                    format!(
                        "the context parameter comes first, right after `&self`: write \
                         `async fn {name}(&self, {ident}: {}, …)`",
                        show(&param.ty)
                    ),
                );
            }
            ParamKind::Context => {}
            ParamKind::ContextNotShared => {
                let ident = param
                    .ident
                    .as_ref()
                    .map_or("ctx".to_owned(), ToString::to_string);
                errors.push(
                    &param.ty,
                    format!("take the context by shared reference: write `{ident}: &Context`"),
                );
            }
            ParamKind::Stream(stream) => {
                streams += 1;
                if streams > 1 {
                    errors.push(
                        &param.ty,
                        "a method takes at most one stream argument: merge the streams into \
                         one `impl Stream<Item = …>`, or split the method in two",
                    );
                }
                match &stream.item {
                    Some(item) => owned_arg(item, errors),
                    None => missing_item(stream, "T", errors),
                }
            }
            ParamKind::Reference => errors.push(&param.ty, by_value(&param.ty)),
            ParamKind::ImplTrait => errors.push(
                &param.ty,
                "`impl Trait` arguments must be streams: write \
                 `impl Stream<Item = T> + Send + Unpin`, or take a concrete type",
            ),
            ParamKind::Plain => {
                plain += 1;
                if plain == MAX_ARGS + 1 {
                    let (pat, ty) = (&param.pat, &param.ty);
                    errors.push(
                        quote!(#pat: #ty),
                        format!(
                            "at most {MAX_ARGS} plain arguments are supported: group them \
                             into a struct and take that"
                        ),
                    );
                }
                owned_arg(&param.ty, errors);
            }
        }
    }
}

fn pattern(param: &Param, errors: &mut Errors) {
    let message = match &param.pat {
        syn::Pat::Ident(pat) if pat.mutability.is_some() && pat.subpat.is_none() => format!(
            "remove `mut`: write `{}: {}` here (`mut` belongs in your impl)",
            pat.ident,
            show(&param.ty)
        ),
        syn::Pat::Wild(_) => format!(
            "name the argument (its name is part of the wire format): write `name: {}`",
            show(&param.ty)
        ),
        _ => format!(
            "name the argument with a plain identifier: write `name: {}`",
            show(&param.ty)
        ),
    };
    errors.push(&param.pat, message);
}

/// Argument types (and stream items) are received by value and have one concrete type.
fn owned_arg(ty: &Type, errors: &mut Errors) {
    let found = Nested::find(ty);
    for impl_trait in found.impls {
        errors.push(
            impl_trait,
            "`impl Trait` is only supported as a whole stream argument \
             (`impl Stream<Item = T>`): use a concrete type here",
        );
    }
    for reference in found.refs {
        errors.push(reference, by_value(&Type::Reference(reference.clone())));
    }
}

fn by_value(ty: &Type) -> String {
    let owned = match peel(ty) {
        Type::Reference(reference) => match peel(&reference.elem) {
            Type::Path(path) if path.path.is_ident("str") => "`String`".to_owned(),
            Type::Slice(slice) => format!("`Vec<{}>`", show(&slice.elem)),
            elem => format!("`{}`", show(elem)),
        },
        _ => "`String`".to_owned(),
    };
    format!("arguments are received by value: use an owned type such as {owned}")
}

fn missing_item(stream: &StreamTy, item: &str, errors: &mut Errors) {
    let write = if stream.concrete {
        "RequestStream<T>".to_owned()
    } else {
        format!("impl Stream<Item = {item}>")
    };
    errors.push(
        &stream.ty,
        format!("name the stream's item type: write `{write}`"),
    );
}

fn output(method: &Method, errors: &mut Errors) {
    let name = method.ident.unraw();
    match &method.output {
        Output::Missing => errors.push_at(
            method.sig.paren_token.span.close(),
            format!(
                "micro methods return a `Result`: write `async fn {name}(…) -> Result<T, Status>` \
                 (or `-> micro::Result<T>`)"
            ),
        ),
        Output::NotResult(ty) => {
            let message = match peel(ty) {
                Type::ImplTrait(impl_trait) if crate::parse::stream_bound(impl_trait).is_some() => {
                    format!(
                        "a returned stream goes inside a `Result`: write `Result<{}, Status>`",
                        show(ty)
                    )
                }
                Type::Tuple(tuple) if tuple.elems.is_empty() => {
                    "micro methods return a `Result`: write `Result<(), Status>`".to_owned()
                }
                _ => format!(
                    "micro methods return a `Result`: write `Result<{}, Status>` \
                     (or `micro::Result<{0}>`)",
                    show(ty)
                ),
            };
            errors.push(ty, message);
        }
        Output::BadResult(ty) => errors.push(
            ty,
            "a `Result` takes the response type and the error type: write `Result<T, Status>` \
             or `micro::Result<T>`",
        ),
        Output::Result { ok, err, stream } => {
            match stream {
                None => owned_response(ok, errors),
                Some(stream) => stream_response(stream, errors),
            }
            if let Some(err) = err {
                stray_impls(err, errors);
            }
        }
    }
}

fn stream_response(stream: &StreamTy, errors: &mut Errors) {
    let Some(item) = &stream.item else {
        missing_item(stream, "Result<T, Status>", errors);
        return;
    };
    match result_shape(item) {
        ResultShape::Result { ok, err } => {
            owned_response(ok, errors);
            if let Some(err) = err {
                stray_impls(err, errors);
            }
        }
        ResultShape::NotResult => owned_response(item, errors),
        ResultShape::Malformed => errors.push(
            item,
            "a stream item `Result` takes the item type and the error type: write \
             `Result<T, Status>` or `micro::Result<T>`",
        ),
    }
}

/// A response is sent by value: no `impl Trait`, no borrowed data.
fn owned_response(ty: &Type, errors: &mut Errors) {
    let found = Nested::find(ty);
    for impl_trait in found.impls {
        errors.push(impl_trait, stray_impl_message());
    }
    for reference in found.refs {
        let is_static = reference
            .lifetime
            .as_ref()
            .is_some_and(|lifetime| lifetime.ident == "static");
        if !is_static {
            errors.push(
                reference,
                "responses are sent by value: return an owned type such as `String`",
            );
        }
    }
}

fn stray_impls(ty: &Type, errors: &mut Errors) {
    for impl_trait in Nested::find(ty).impls {
        errors.push(impl_trait, stray_impl_message());
    }
}

fn stray_impl_message() -> &'static str {
    "`impl Trait` in the return type is only supported as the stream in \
     `Result<impl Stream<Item = T> + Send, E>`: use a concrete type here"
}

/// The `impl Trait`s and references inside a type (not looking into either).
#[derive(Default)]
struct Nested<'a> {
    impls: Vec<&'a TypeImplTrait>,
    refs: Vec<&'a TypeReference>,
}

impl<'a> Nested<'a> {
    fn find(ty: &'a Type) -> Self {
        let mut found = Self::default();
        found.visit_type(ty);
        found
    }
}

impl<'a> Visit<'a> for Nested<'a> {
    fn visit_type_impl_trait(&mut self, impl_trait: &'a TypeImplTrait) {
        self.impls.push(impl_trait);
    }

    fn visit_type_reference(&mut self, reference: &'a TypeReference) {
        self.refs.push(reference);
    }

    fn visit_type_bare_fn(&mut self, _: &'a syn::TypeBareFn) {
        // `fn(&str)` borrows nothing itself.
    }
}

/// Tokens as a person would write them, for messages: `&micro::Context`, not `& micro :: Context`.
fn show(tokens: impl ToTokens) -> String {
    let mut writer = Writer::default();
    writer.write(tokens.into_token_stream());
    writer.out
}

#[derive(Default)]
struct Writer {
    out: String,
    /// A space goes before the next token unless that token sticks to what precedes it.
    space: bool,
    /// The previous token was the first `:` of a `::`.
    path_colon: bool,
    /// The previous token was an identifier (so `(` after it is `Fn(…)`-style).
    ident: bool,
}

impl Writer {
    fn write(&mut self, tokens: TokenStream) {
        for token in tokens {
            match token {
                TokenTree::Punct(punct) => {
                    let c = punct.as_char();
                    let joint = punct.spacing() == Spacing::Joint;
                    if self.space && !matches!(c, ',' | ';' | ':' | '<' | '>' | '.' | '?') {
                        self.out.push(' ');
                    }
                    self.out.push(c);
                    let second_colon = c == ':' && self.path_colon;
                    self.space =
                        !(joint || second_colon || matches!(c, '&' | '<' | '\'' | '*' | '#'));
                    self.path_colon = c == ':' && joint;
                    self.ident = false;
                }
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{ ", " }"),
                        Delimiter::None => {
                            self.write(group.stream());
                            continue;
                        }
                    };
                    let call = self.ident && group.delimiter() == Delimiter::Parenthesis;
                    if self.space && !call {
                        self.out.push(' ');
                    }
                    self.out.push_str(open);
                    self.space = false;
                    self.path_colon = false;
                    self.ident = false;
                    self.write(group.stream());
                    self.out.push_str(close);
                    self.space = true;
                    self.ident = false;
                }
                TokenTree::Ident(ident) => {
                    self.word(&ident.to_string());
                    self.ident = true;
                }
                TokenTree::Literal(literal) => {
                    self.word(&literal.to_string());
                    self.ident = false;
                }
            }
        }
    }

    fn word(&mut self, word: &str) {
        if self.space {
            self.out.push(' ');
        }
        self.out.push_str(word);
        self.space = true;
        self.path_colon = false;
    }
}

#[cfg(test)]
mod tests;
