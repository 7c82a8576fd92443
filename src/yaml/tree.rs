//! serde over a [`block::Node`] tree: the subset reader's documents into
//! the same typed values serde-saphyr makes of them. Every doubt (a plain
//! scalar that YAML would read as null, a number not written in plain
//! decimal, an unknown key...) is a [`Fallback`]: the full parser decides.

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, U64Deserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::block::{Kind, Node};
use super::located;

/// "Let serde-saphyr read this document" (the reason does not matter).
#[derive(Debug)]
pub struct Fallback;

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("outside the YAML subset")
    }
}

impl std::error::Error for Fallback {}

impl de::Error for Fallback {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fallback
    }
}

/// What YAML reads as null when written plain.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

impl<'de> Node<'de> {
    fn plain(&self) -> Result<&'de str, Fallback> {
        match self.kind {
            Kind::Scalar { text, plain: true } => Ok(text),
            _ => Err(Fallback),
        }
    }

    fn text(&self) -> Result<&'de str, Fallback> {
        match self.kind {
            // `${...}`: serde-saphyr may substitute it; it decides.
            Kind::Scalar { text, plain } if !(text.contains("${") || plain && is_null(text)) => Ok(text),
            _ => Err(Fallback),
        }
    }
}

impl<'de> Deserializer<'de> for Node<'de> {
    type Error = Fallback;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        match self.kind {
            Kind::Map(entries) => v.visit_map(Entries { entries: entries.into_iter(), value: None }),
            Kind::Seq(items) => v.visit_seq(Items(items.into_iter())),
            Kind::Scalar { .. } => Err(Fallback),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        match self.plain()? {
            "true" => v.visit_bool(true),
            "false" => v.visit_bool(false),
            _ => Err(Fallback),
        }
    }

    /// Plain decimal only: YAML has other spellings (0x1F, 0o17, 1_000,
    /// leading zeros) that serde-saphyr decides about.
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        let t = self.plain()?;
        let decimal = !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'));
        if !decimal {
            return Err(Fallback);
        }
        v.visit_u64(t.parse().map_err(|_| Fallback)?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        self.deserialize_u64(v)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        self.deserialize_u64(v)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        self.deserialize_u64(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        v.visit_borrowed_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        match self.kind {
            Kind::Scalar { text, plain: true } if is_null(text) => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, Fallback> {
        if name == located::NAME {
            v.visit_seq(LocatedParts { pos: [self.pos.line, self.pos.column], at: 0, node: Some(self) })
        } else {
            v.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        match self.kind {
            Kind::Seq(items) => v.visit_seq(Items(items.into_iter())),
            _ => Err(Fallback),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Fallback> {
        match self.kind {
            Kind::Map(entries) => v.visit_map(Entries { entries: entries.into_iter(), value: None }),
            _ => Err(Fallback),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Fallback> {
        self.deserialize_map(v)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u128 f32 f64 char bytes byte_buf unit unit_struct tuple tuple_struct enum ignored_any
    }
}

struct Items<'de>(std::vec::IntoIter<Node<'de>>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Fallback;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Fallback> {
        self.0.next().map(|n| seed.deserialize(n)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'de> {
    entries: std::vec::IntoIter<(&'de str, Node<'de>)>,
    value: Option<Node<'de>>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Fallback;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Fallback> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Fallback> {
        seed.deserialize(self.value.take().ok_or(Fallback)?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A [`located::Located`] as the sequence (line, column, value).
struct LocatedParts<'de> {
    pos: [u64; 2],
    at: usize,
    node: Option<Node<'de>>,
}

impl<'de> SeqAccess<'de> for LocatedParts<'de> {
    type Error = Fallback;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Fallback> {
        self.at += 1;
        match self.at {
            1 | 2 => {
                let n: U64Deserializer<Fallback> = self.pos[self.at - 1].into_deserializer();
                seed.deserialize(n).map(Some)
            }
            _ => self.node.take().map(|n| seed.deserialize(n)).transpose(),
        }
    }
}
