//! A value with the byte range it was written at in orrery.toml, so later stages can point
//! at it (e.g. "selector `x` matches nothing").

use std::borrow::Cow;
use std::ops::{Deref, Range};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serialises and deserialises as the bare value (so plans round-trip through JSON); the
/// span is filled in by [`super::parse`] and is `None` for values read from elsewhere.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    /// Byte range in the pipeline file's source text.
    pub span: Option<Range<usize>>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Option<Range<usize>>) -> Self {
        Spanned { value, span }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|value| Spanned { value, span: None })
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
