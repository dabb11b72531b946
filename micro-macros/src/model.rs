//! The service as the macro understands it.
//!
//! [`parse`](crate::parse) fills it in without judging anything, so it can hold signatures the
//! macro cannot serve: the faithful parts (`receiver`, `params`, `output`, the original
//! `sig`) are what [`validate`](crate::validate) checks. The derived parts (`context`, `args`,
//! `stream_arg`, `ret`, `kind`) are what [`expand`](crate::expand) generates from; they are
//! only meaningful once validation passed.

use proc_macro2::TokenStream;
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Block, Generics, Ident, Pat, Signature, Token, TraitItem, Type, TypeParamBound,
    Visibility,
};

/// A trait annotated with `#[micro::service]`.
pub(crate) struct Service {
    /// What was written inside `#[micro::service(…)]`: must be empty.
    pub(crate) args: TokenStream,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) unsafety: Option<Token![unsafe]>,
    pub(crate) trait_token: Token![trait],
    pub(crate) ident: Ident,
    /// Must be empty, and without a where clause.
    pub(crate) generics: Generics,
    pub(crate) colon_token: Option<Token![:]>,
    pub(crate) supertraits: Punctuated<TypeParamBound, Token![+]>,
    pub(crate) methods: Vec<Method>,
    /// Associated types, consts, macros…: every one is an error.
    pub(crate) others: Vec<TraitItem>,
}

/// One `fn` of the trait.
pub(crate) struct Method {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) ident: Ident,
    /// The signature as written; the rewritten trait starts from it.
    pub(crate) sig: Signature,
    /// A default body: an error.
    pub(crate) default: Option<Block>,
    /// The `;` ending a declaration without a body.
    pub(crate) semi_token: Option<Token![;]>,
    pub(crate) receiver: Receiver,
    /// Every parameter after the receiver, in order.
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,

    /// The first parameter is a `&Context`: the server passes the call's context.
    pub(crate) context: bool,
    /// The plain (sent on the wire as one tuple) arguments, in order.
    pub(crate) args: Vec<Arg>,
    pub(crate) stream_arg: Option<StreamArg>,
    pub(crate) ret: Ret,
    pub(crate) kind: Kind,
}

/// How the method takes `self`.
pub(crate) enum Receiver {
    /// `&self` (or `self: &Self`): the only one served.
    Ref,
    /// `self`, `&mut self`, `&'a self`, `self: Box<Self>`…
    Other(syn::Receiver),
    /// No receiver at all.
    Missing,
}

/// A parameter after the receiver.
pub(crate) struct Param {
    pub(crate) pat: Pat,
    /// The name when the pattern is a plain identifier (no `mut`, `ref`, `_`, tuple…).
    pub(crate) ident: Option<Ident>,
    pub(crate) ty: Type,
    pub(crate) kind: ParamKind,
}

#[allow(
    clippy::large_enum_variant,
    reason = "a few per trait, built once: boxing would only add noise"
)]
pub(crate) enum ParamKind {
    /// `&Context`, `&micro::Context`.
    Context,
    /// `Context` by value or `&mut Context`.
    ContextNotShared,
    /// `impl Stream<Item = T> + …` or `RequestStream<T>`.
    Stream(StreamTy),
    /// Any other reference.
    Reference,
    /// `impl Trait` that is not a stream.
    ImplTrait,
    /// Anything else: sent on the wire.
    Plain,
}

/// A stream type, as an argument or in the `Ok` of the return type.
pub(crate) struct StreamTy {
    /// The type as written.
    pub(crate) ty: Type,
    /// `RequestStream<T>` rather than `impl Stream<…>`.
    pub(crate) concrete: bool,
    /// The `T` of `Item = T` (or of `RequestStream<T>`), if written.
    pub(crate) item: Option<Type>,
}

/// The return type.
#[allow(
    clippy::large_enum_variant,
    reason = "one per method, built once: boxing would only add noise"
)]
pub(crate) enum Output {
    Missing,
    /// Not a path ending in `Result`.
    NotResult(Type),
    /// A path ending in `Result` whose arguments are not `<T>` or `<T, E>`.
    BadResult(Type),
    Result {
        ok: Type,
        err: Option<Type>,
        /// The `Ok` type is `impl Stream<…>`.
        stream: Option<StreamTy>,
    },
}

/// A plain argument.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// The stream argument.
pub(crate) struct StreamArg {
    /// How many plain arguments come before it (the call keeps the user's order).
    pub(crate) position: usize,
    pub(crate) ident: Ident,
    pub(crate) item_ty: Type,
}

/// What the method sends back.
pub(crate) struct Ret {
    /// The `T` of `Ok(T)`, or of each stream item.
    pub(crate) ty: Type,
    /// Stream items are `Result`s; otherwise they are wrapped in `Ok` by the server.
    pub(crate) item_fallible: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidirectional,
}

impl Kind {
    pub(crate) fn new(stream_arg: bool, stream_ret: bool) -> Self {
        match (stream_arg, stream_ret) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStreaming,
            (true, false) => Self::ClientStreaming,
            (true, true) => Self::Bidirectional,
        }
    }

    /// The variant's name in `micro::MethodKind`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Unary => "Unary",
            Self::ServerStreaming => "ServerStreaming",
            Self::ClientStreaming => "ClientStreaming",
            Self::Bidirectional => "Bidirectional",
        }
    }
}
