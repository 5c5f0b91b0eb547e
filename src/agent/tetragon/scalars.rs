//! Scalar JSON fields: borrowed strings, and protojson integers (64-bit as strings) of either shape.
use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A JSON string borrowed from the line when it has no escapes (serde only borrows a `Cow`
/// that is a field of its own, so `Option<Cow<str>>` needs this newtype).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Str<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An unsigned integer written as a JSON number or a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexU64(pub u64);

/// A signed integer written as a JSON number or a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexI64(pub i64);

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i128;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a decimal string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        v.parse::<i128>()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for FlexU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(IntVisitor)?;
        u64::try_from(v)
            .map(FlexU64)
            .map_err(|_| de::Error::custom("integer out of range"))
    }
}

impl<'de> Deserialize<'de> for FlexI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(IntVisitor)?;
        i64::try_from(v)
            .map(FlexI64)
            .map_err(|_| de::Error::custom("integer out of range"))
    }
}
