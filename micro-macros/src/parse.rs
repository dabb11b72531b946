//! syn → [`model`](crate::model): reads the trait and classifies each parameter and the return
//! type from their syntax alone. Nothing is rejected here except input that is not a trait;
//! the signature rules live in [`validate`](crate::validate).

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Item, ItemTrait, Pat, PathArguments, PathSegment, ReturnType,
    TraitBound, TraitItem, TraitItemFn, Type, TypeImplTrait, TypeParamBound, TypeTuple,
};

use crate::model::{
    Arg, Kind, Method, Output, Param, ParamKind, Receiver, Ret, Service, StreamArg, StreamTy,
};

/// Reads the attribute's input; fails only when it is not a trait.
pub(crate) fn service(args: TokenStream, input: TokenStream) -> syn::Result<Service> {
    match syn::parse2::<Item>(input)? {
        Item::Trait(item) => Ok(from_trait(args, item)),
        other => Err(not_a_trait(&other)),
    }
}

fn not_a_trait(item: &Item) -> syn::Error {
    if let Item::Impl(item) = item {
        if let Some((_, path, _)) = &item.trait_ {
            let name = path.segments.last().map(|s| s.ident.to_string());
            let name = name.as_deref().unwrap_or("Name");
            let message = format!(
                "put `#[micro::service]` on the trait declaration (`pub trait {name} {{ … }}`), \
                 not on its impl"
            );
            return syn::Error::new(item.impl_token.span, message);
        }
    }
    let span = match item {
        Item::Struct(item) => item.struct_token.span,
        Item::Enum(item) => item.enum_token.span,
        Item::Union(item) => item.union_token.span,
        Item::Fn(item) => item.sig.fn_token.span,
        Item::Impl(item) => item.impl_token.span,
        Item::Mod(item) => item.mod_token.span,
        Item::Type(item) => item.type_token.span,
        Item::Const(item) => item.const_token.span,
        Item::Static(item) => item.static_token.span,
        Item::TraitAlias(item) => item.trait_token.span,
        _ => item.span(),
    };
    syn::Error::new(
        span,
        "`#[micro::service]` goes on a trait: write \
         `pub trait Name { async fn method(&self, …) -> Result<T, Status>; }`",
    )
}

fn from_trait(args: TokenStream, item: ItemTrait) -> Service {
    let mut methods = Vec::new();
    let mut others = Vec::new();
    for item in item.items {
        match item {
            TraitItem::Fn(method) => methods.push(self::method(method)),
            other => others.push(other),
        }
    }
    Service {
        args,
        attrs: item.attrs,
        vis: item.vis,
        unsafety: item.unsafety,
        trait_token: item.trait_token,
        ident: item.ident,
        generics: item.generics,
        colon_token: item.colon_token,
        supertraits: item.supertraits,
        methods,
        others,
    }
}

fn method(item: TraitItemFn) -> Method {
    let sig = item.sig;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) if is_ref_self(receiver) => Receiver::Ref,
        Some(FnArg::Receiver(receiver)) => Receiver::Other(receiver.clone()),
        _ => Receiver::Missing,
    };
    let params: Vec<Param> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(arg) => Some(Param {
                pat: (*arg.pat).clone(),
                ident: plain_ident(&arg.pat),
                ty: (*arg.ty).clone(),
                kind: param_kind(&arg.ty),
            }),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let output = output(&sig.output);

    let context = params
        .first()
        .is_some_and(|p| matches!(p.kind, ParamKind::Context));
    let args = params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Plain))
        .filter_map(|p| {
            Some(Arg {
                ident: p.ident.clone()?,
                ty: p.ty.clone(),
            })
        })
        .collect();
    let stream_arg = params.iter().enumerate().find_map(|(i, p)| match &p.kind {
        ParamKind::Stream(stream) => Some(StreamArg {
            position: params[..i]
                .iter()
                .filter(|p| matches!(p.kind, ParamKind::Plain))
                .count(),
            ident: p.ident.clone()?,
            item_ty: stream.item.clone()?,
        }),
        _ => None,
    });
    let (ret, stream_ret) = ret(&output);
    let stream_param = params
        .iter()
        .any(|p| matches!(p.kind, ParamKind::Stream(_)));

    Method {
        attrs: item.attrs,
        ident: sig.ident.clone(),
        default: item.default,
        semi_token: item.semi_token,
        receiver,
        params,
        output,
        context,
        args,
        stream_arg,
        ret,
        kind: Kind::new(stream_param, stream_ret),
        sig,
    }
}

/// `&self` or `self: &Self`.
fn is_ref_self(receiver: &syn::Receiver) -> bool {
    if receiver.colon_token.is_none() {
        return matches!(receiver.reference, Some((_, None))) && receiver.mutability.is_none();
    }
    match peel(&receiver.ty) {
        Type::Reference(r) => {
            r.lifetime.is_none()
                && r.mutability.is_none()
                && matches!(peel(&r.elem), Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
        }
        _ => false,
    }
}

fn plain_ident(pat: &Pat) -> Option<syn::Ident> {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
            Some(p.ident.clone())
        }
        _ => None,
    }
}

fn param_kind(ty: &Type) -> ParamKind {
    match peel(ty) {
        Type::Reference(r) if last_segment(&r.elem).is_some_and(|s| s.ident == "Context") => {
            if r.mutability.is_some() {
                ParamKind::ContextNotShared
            } else {
                ParamKind::Context
            }
        }
        Type::Reference(_) => ParamKind::Reference,
        Type::ImplTrait(impl_trait) => {
            stream_impl(impl_trait, ty).map_or(ParamKind::ImplTrait, ParamKind::Stream)
        }
        peeled => match last_segment(peeled) {
            Some(segment) if segment.ident == "RequestStream" => ParamKind::Stream(StreamTy {
                ty: ty.clone(),
                concrete: true,
                item: single_type_arg(segment).cloned(),
            }),
            Some(segment) if segment.ident == "Context" => ParamKind::ContextNotShared,
            _ => ParamKind::Plain,
        },
    }
}

fn output(output: &ReturnType) -> Output {
    let ReturnType::Type(_, ty) = output else {
        return Output::Missing;
    };
    match result_shape(ty) {
        ResultShape::NotResult => Output::NotResult((**ty).clone()),
        ResultShape::Malformed => Output::BadResult((**ty).clone()),
        ResultShape::Result { ok, err } => Output::Result {
            ok: ok.clone(),
            err: err.cloned(),
            stream: match peel(ok) {
                Type::ImplTrait(impl_trait) => stream_impl(impl_trait, ok),
                _ => None,
            },
        },
    }
}

/// What is sent back, and whether it is a stream.
fn ret(output: &Output) -> (Ret, bool) {
    let unit = || {
        Type::Tuple(TypeTuple {
            paren_token: syn::token::Paren(Span::call_site()),
            elems: syn::punctuated::Punctuated::new(),
        })
    };
    match output {
        Output::Result {
            ok, stream: None, ..
        } => (
            Ret {
                ty: ok.clone(),
                item_fallible: false,
            },
            false,
        ),
        Output::Result {
            stream: Some(stream),
            ..
        } => {
            let ret = match stream.item.as_ref() {
                Some(item) => match result_shape(item) {
                    ResultShape::Result { ok, .. } => Ret {
                        ty: ok.clone(),
                        item_fallible: true,
                    },
                    ResultShape::NotResult | ResultShape::Malformed => Ret {
                        ty: item.clone(),
                        item_fallible: false,
                    },
                },
                None => Ret {
                    ty: unit(),
                    item_fallible: true,
                },
            };
            (ret, true)
        }
        Output::Missing | Output::NotResult(_) | Output::BadResult(_) => (
            Ret {
                ty: unit(),
                item_fallible: false,
            },
            false,
        ),
    }
}

/// `impl Stream<Item = T> + …` (any path ending in `Stream`), read into a [`StreamTy`].
fn stream_impl(impl_trait: &TypeImplTrait, ty: &Type) -> Option<StreamTy> {
    let stream = stream_bound(impl_trait)?;
    let item = stream
        .path
        .segments
        .last()
        .and_then(|segment| match &segment.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                GenericArgument::AssocType(assoc) if assoc.ident == "Item" => {
                    Some(assoc.ty.clone())
                }
                _ => None,
            }),
            _ => None,
        });
    Some(StreamTy {
        ty: ty.clone(),
        concrete: false,
        item,
    })
}

/// The bound of an `impl` type whose path ends in `Stream`.
pub(crate) fn stream_bound(impl_trait: &TypeImplTrait) -> Option<&TraitBound> {
    impl_trait
        .bounds
        .iter()
        .find_map(|bound| trait_bound_named(bound, "Stream"))
}

pub(crate) fn has_send(impl_trait: &TypeImplTrait) -> bool {
    impl_trait
        .bounds
        .iter()
        .any(|bound| trait_bound_named(bound, "Send").is_some())
}

fn trait_bound_named<'a>(bound: &'a TypeParamBound, name: &str) -> Option<&'a TraitBound> {
    match bound {
        TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == name) => {
            Some(t)
        }
        _ => None,
    }
}

/// How a type reads as a `Result`.
pub(crate) enum ResultShape<'a> {
    NotResult,
    /// `Result`, `Result<'a, T>`, `Result<A, B, C>`…
    Malformed,
    Result {
        ok: &'a Type,
        err: Option<&'a Type>,
    },
}

/// `Result<T, E>`, `micro::Result<T>`, or any path whose last segment is `Result`.
pub(crate) fn result_shape(ty: &Type) -> ResultShape<'_> {
    let Some(segment) = last_segment(ty) else {
        return ResultShape::NotResult;
    };
    if segment.ident != "Result" {
        return ResultShape::NotResult;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return ResultShape::Malformed;
    };
    let types: Option<Vec<&Type>> = args
        .args
        .iter()
        .map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    match types.as_deref() {
        Some([ok]) => ResultShape::Result { ok, err: None },
        Some([ok, err]) => ResultShape::Result { ok, err: Some(err) },
        _ => ResultShape::Malformed,
    }
}

/// The last segment of a plain path type (`a::b::C<T>` → `C<T>`).
fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match peel(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

fn single_type_arg(segment: &PathSegment) -> Option<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first()? {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        },
        _ => None,
    }
}

/// Looks through parentheses and the invisible groups `macro_rules!` wraps `$t:ty` in.
pub(crate) fn peel(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::{ToTokens, quote};

    use super::*;

    fn say() -> Service {
        service(
            TokenStream::new(),
            quote! {
                pub trait Say {
                    async fn hello(&self, name: String) -> Result<String, Status>;
                    async fn stream(&self, req: SRequest)
                        -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
                    async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;
                    async fn bidirectional_stream(&self, reqs: impl futures::Stream<Item = SRequest> + Unpin)
                        -> Result<impl Stream<Item = Result<SResponse, Status>> + Send + 'static, Status>;
                    async fn add(&self, ctx: &micro::Context, a: i32, b: i32) -> micro::Result<i32>;
                    async fn ticks(&self, every: u64, items: micro::RequestStream<u8>, tag: String)
                        -> Result<impl Stream<Item = u64>, Status>;
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn impl_of(ty: &Type) -> TypeImplTrait {
        match peel(ty) {
            Type::ImplTrait(impl_trait) => impl_trait.clone(),
            _ => panic!("not an impl type"),
        }
    }

    fn show(tokens: impl ToTokens) -> String {
        tokens.to_token_stream().to_string()
    }

    #[test]
    fn kinds_come_from_the_signature() {
        let kinds: Vec<Kind> = say().methods.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Unary,
                Kind::ServerStreaming,
                Kind::ClientStreaming,
                Kind::Bidirectional,
                Kind::Unary,
                Kind::Bidirectional,
            ]
        );
    }

    #[test]
    fn context_and_plain_args() {
        let service = say();
        let add = &service.methods[4];
        assert!(add.context);
        let args: Vec<String> = add.args.iter().map(|a| show(&a.ident)).collect();
        assert_eq!(args, ["a", "b"]);
        assert_eq!(show(&add.ret.ty), "i32");
        assert!(!service.methods[0].context);
    }

    #[test]
    fn stream_argument_keeps_its_position_and_item() {
        let service = say();
        let ticks = &service.methods[5];
        let stream = ticks.stream_arg.as_ref().expect("stream argument");
        assert_eq!(stream.position, 1);
        assert_eq!(show(&stream.ident), "items");
        assert_eq!(show(&stream.item_ty), "u8");
        let args: Vec<String> = ticks.args.iter().map(|a| show(&a.ident)).collect();
        assert_eq!(args, ["every", "tag"]);
    }

    #[test]
    fn stream_items_fallible_or_not() {
        let service = say();
        assert!(service.methods[1].ret.item_fallible);
        assert_eq!(show(&service.methods[1].ret.ty), "SResponse");
        assert!(!service.methods[5].ret.item_fallible);
        assert_eq!(show(&service.methods[5].ret.ty), "u64");
    }

    #[test]
    fn stream_bounds_are_read() {
        let service = say();
        let ParamKind::Stream(stream) = &service.methods[3].params[0].kind else {
            panic!("not a stream");
        };
        assert!(!has_send(&impl_of(&stream.ty)));
        let Output::Result {
            stream: Some(stream),
            ..
        } = &service.methods[3].output
        else {
            panic!("not a stream return");
        };
        assert!(has_send(&impl_of(&stream.ty)));
    }

    #[test]
    fn non_traits_are_rejected_on_their_keyword() {
        let Err(error) = service(
            TokenStream::new(),
            quote!(
                pub struct Say;
            ),
        ) else {
            panic!("accepted a struct");
        };
        assert!(error.to_string().contains("goes on a trait"));
        let Err(error) = service(TokenStream::new(), quote!(impl Say for S {})) else {
            panic!("accepted an impl");
        };
        assert!(error.to_string().contains("`pub trait Say { … }`"));
    }
}
