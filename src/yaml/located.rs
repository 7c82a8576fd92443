//! A value and where it was written: what every schema field is, so that
//! semantic errors can point at the value that breaks a rule.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::diag::Pos;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// The newtype name by which the subset reader ([`super::tree`]) recognises
/// a [`Located`] and hands it (line, column, value). serde-saphyr does not
/// know it and passes itself on, to be read as its own `Spanned`.
pub(super) const NAME: &str = "__flannel_gen_located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(NAME, LocatedVisitor(PhantomData))
    }
}

struct LocatedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    /// serde-saphyr: its own spanned wrapper knows where the value is.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located { value: s.value, pos: Pos::from(s.referenced) })
    }

    /// The subset reader: (line, column, value).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = || de::Error::custom("a located value is (line, column, value)");
        let line: u64 = seq.next_element()?.ok_or_else(missing)?;
        let column: u64 = seq.next_element()?.ok_or_else(missing)?;
        let value: T = seq.next_element()?.ok_or_else(missing)?;
        Ok(Located { value, pos: Pos::new(line, column) })
    }
}
