//! A method's plain arguments as one message: none is `nil`, one is the value itself, several are
//! a map from parameter name to value.

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::{Status, message};

/// Plain arguments a client sends; implemented for tuples of up to 12 [`Serialize`] values.
pub trait EncodeArgs {
    /// Encodes the arguments as one message (prefix included); `names` are the parameter names.
    #[doc(hidden)]
    fn encode_args(self, names: &'static [&'static str]) -> Result<Bytes, Status>;
}

/// Plain arguments a server receives; implemented for tuples of up to 12 deserializable values.
pub trait DecodeArgs: Sized {
    /// Decodes the arguments from one message body; `names` are the parameter names.
    #[doc(hidden)]
    fn decode_args(names: &'static [&'static str], body: &[u8]) -> Result<Self, Status>;
}

fn invalid(err: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("arguments do not decode: {err}"))
}

/// No arguments: `nil` as one message, with its length prefix.
const NO_ARGS: &[u8] = &[0, 0, 0, 1, 0xc0];

impl EncodeArgs for () {
    fn encode_args(self, _: &'static [&'static str]) -> Result<Bytes, Status> {
        // Static: every call without arguments would otherwise allocate this (twice, with the
        // buffer's shared header) and keep it while its OPEN frame waits to be written.
        Ok(Bytes::from_static(NO_ARGS))
    }
}

impl DecodeArgs for () {
    fn decode_args(_: &'static [&'static str], body: &[u8]) -> Result<(), Status> {
        // Anything is accepted, so a client may send `nil`, `{}` or a newer client's argument.
        message::decode::<IgnoredAny>(body)
            .map(drop)
            .map_err(invalid)
    }
}

impl<A: Serialize> EncodeArgs for (A,) {
    fn encode_args(self, _: &'static [&'static str]) -> Result<Bytes, Status> {
        message::encode(&self.0)
    }
}

impl<A: DeserializeOwned> DecodeArgs for (A,) {
    fn decode_args(_: &'static [&'static str], body: &[u8]) -> Result<(A,), Status> {
        message::decode::<A>(body).map(|a| (a,)).map_err(invalid)
    }
}

/// Serializes a tuple as a map keyed by parameter name.
struct Named<'a, T> {
    names: &'static [&'static str],
    values: &'a T,
}

/// Deserializes a map keyed by parameter name into a tuple.
struct NamedSeed<T> {
    names: &'static [&'static str],
    _tuple: std::marker::PhantomData<T>,
}

macro_rules! tuple_args {
    ($len:literal: $($T:ident $idx:tt),+) => {
        impl<$($T: Serialize),+> Serialize for Named<'_, ($($T,)+)> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some($len))?;
                $( map.serialize_entry(self.names[$idx], &self.values.$idx)?; )+
                map.end()
            }
        }

        impl<$($T: Serialize),+> EncodeArgs for ($($T,)+) {
            fn encode_args(self, names: &'static [&'static str]) -> Result<Bytes, Status> {
                message::encode(&Named { names, values: &self })
            }
        }

        impl<'de, $($T: DeserializeOwned),+> DeserializeSeed<'de> for NamedSeed<($($T,)+)> {
            type Value = ($($T,)+);
            fn deserialize<De: de::Deserializer<'de>>(self, d: De) -> Result<Self::Value, De::Error> {
                d.deserialize_map(self)
            }
        }

        impl<'de, $($T: DeserializeOwned),+> Visitor<'de> for NamedSeed<($($T,)+)> {
            type Value = ($($T,)+);
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a map of the arguments {:?}", self.names)
            }
            #[allow(non_snake_case)]
            fn visit_map<Map: MapAccess<'de>>(self, mut map: Map) -> Result<Self::Value, Map::Error> {
                $( let mut $T: Option<$T> = None; )+
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match self.names.iter().position(|n| *n == key) {
                        $( Some($idx) => {
                            if $T.is_some() {
                                return Err(de::Error::custom(format_args!("argument `{key}` given twice")));
                            }
                            $T = Some(map.next_value()?);
                        } )+
                        // An argument a newer client sends and this server does not know.
                        _ => { map.next_value::<IgnoredAny>()?; }
                    }
                }
                Ok(($(
                    match $T {
                        Some(value) => value,
                        // A missing `Option` argument is `None`, as serde does for struct fields.
                        None => $T::deserialize(de::value::UnitDeserializer::<Map::Error>::new())
                            .map_err(|_| de::Error::missing_field(self.names[$idx]))?,
                    },
                )+))
            }
        }

        impl<$($T: DeserializeOwned),+> DecodeArgs for ($($T,)+) {
            fn decode_args(names: &'static [&'static str], body: &[u8]) -> Result<Self, Status> {
                message::check_depth(body).map_err(invalid)?;
                let mut de = message::deserializer(body);
                NamedSeed::<Self> { names, _tuple: std::marker::PhantomData }.deserialize(&mut de).map_err(invalid)
            }
        }
    };
}

tuple_args!(2: A 0, B 1);
tuple_args!(3: A 0, B 1, C 2);
tuple_args!(4: A 0, B 1, C 2, D 3);
tuple_args!(5: A 0, B 1, C 2, D 3, E 4);
tuple_args!(6: A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(7: A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_args!(9: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_args!(10: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_args!(11: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_args!(12: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    const NAMES: &[&str] = &["name", "count", "note"];

    #[test]
    fn no_arguments_are_nil_as_encoded() {
        assert_eq!(().encode_args(&[]).unwrap(), message::encode(&()).unwrap());
    }

    #[test]
    fn one_argument_is_the_value_itself() {
        let msg = ("hi".to_string(),).encode_args(&["name"]).unwrap();
        assert_eq!(&msg[4..], b"\xa2hi");
        let (name,): (String,) = DecodeArgs::decode_args(&["name"], &msg[4..]).unwrap();
        assert_eq!(name, "hi");
    }

    #[test]
    fn several_arguments_are_a_named_map() {
        let msg = ("a".to_string(), 3i64, Some(true))
            .encode_args(NAMES)
            .unwrap();
        assert_eq!(&msg[4..6], b"\x83\xa4");
        let back: (String, i64, Option<bool>) = DecodeArgs::decode_args(NAMES, &msg[4..]).unwrap();
        assert_eq!(back, ("a".to_string(), 3, Some(true)));
    }

    #[test]
    fn order_unknown_keys_and_missing_options_are_tolerated() {
        // {"count": 2, "extra": [1], "name": "z"}: no "note"
        let body = b"\x83\xa5count\x02\xa5extra\x91\x01\xa4name\xa1z";
        let back: (String, i64, Option<bool>) = DecodeArgs::decode_args(NAMES, body).unwrap();
        assert_eq!(back, ("z".to_string(), 2, None));
    }

    #[test]
    fn missing_required_argument_is_invalid_argument() {
        let body = b"\x81\xa4name\xa1z";
        let err = <(String, i64, Option<bool>)>::decode_args(NAMES, body).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("count"), "{err}");
    }

    #[test]
    fn wrong_type_is_invalid_argument() {
        let err = <(i64,)>::decode_args(&["n"], b"\xa1z").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}

#[cfg(test)]
mod bomb_tests {
    use super::*;

    /// Runs `f` on a thread with a 2 MiB stack, the size of a tokio worker's.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        on_small_stack(|| {
            let bomb = vec![0x91u8; 100_000]; // [[[[…]]]]
            assert!(<()>::decode_args(&[], &bomb).is_err());
            // the same bomb as the value of an unknown argument
            let mut named = b"\x82\xa1a\x01\xa7unknown".to_vec();
            named.extend_from_slice(&bomb);
            assert!(<(u8, Option<u8>)>::decode_args(&["a", "b"], &named).is_err());
        });
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing_large() {
        for bomb in [
            &b"\xdd\xff\xff\xff\xff"[..],
            b"\xc6\xff\xff\xff\xff",
            b"\xdb\xff\xff\xff\xff",
            b"\xdf\xff\xff\xff\xff",
        ] {
            assert!(<(Vec<u64>,)>::decode_args(&["v"], bomb).is_err());
            assert!(<(String,)>::decode_args(&["s"], bomb).is_err());
            assert!(<()>::decode_args(&[], bomb).is_err());
        }
    }
}
