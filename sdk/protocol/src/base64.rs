use std::fmt;

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes carried on the wire as standard base64 with padding.
///
/// ```
/// use synckit_protocol::Base64Bytes;
/// let b = Base64Bytes::from(vec![0xde, 0xad]);
/// assert_eq!(serde_json::to_string(&b).unwrap(), r#""3q0=""#);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Base64Bytes(pub Vec<u8>);

impl Base64Bytes {
    /// The decoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes the decoded bytes out.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Base64Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Base64Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl AsRef<[u8]> for Base64Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

// Payloads are ciphertext and keys: printing them helps nobody and may leak key material into logs.
impl fmt::Debug for Base64Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct B64;
        impl Visitor<'_> for B64 {
            type Value = Base64Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a standard base64 string with padding")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                STANDARD.decode(v).map(Base64Bytes).map_err(|e| E::custom(format_args!("invalid base64: {e}")))
            }
        }
        deserializer.deserialize_str(B64)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};

    impl utoipa::PartialSchema for super::Base64Bytes {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                .description(Some("standard base64 with padding"))
                .into()
        }
    }

    impl utoipa::ToSchema for super::Base64Bytes {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_base64() {
        let b: Base64Bytes = serde_json::from_str(r#""aGVsbG8=""#).unwrap();
        assert_eq!(b.as_bytes(), b"hello");
        assert_eq!(serde_json::to_string(&b).unwrap(), r#""aGVsbG8=""#);

        let err = serde_json::from_str::<Base64Bytes>(r#""not base64!""#).unwrap_err();
        assert!(err.to_string().contains("invalid base64"), "{err}");
        // Unpadded input is not standard base64.
        assert!(serde_json::from_str::<Base64Bytes>(r#""aGVsbG8""#).is_err());
    }
}
