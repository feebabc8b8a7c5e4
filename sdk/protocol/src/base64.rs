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

/// A regular expression (ECMA-262 and Python syntax alike) that matches exactly the canonical standard base64 of
/// `min` to `max` bytes, as [`Base64Bytes`] reads it: `=` padding, no line breaks, and the unused bits of the last
/// character zero (the decoder refuses anything else).
///
/// `n = 3k + r` bytes are `k` groups of four characters, then two characters and `==` for `r = 1`, or three and
/// `=` for `r = 2`; each `r` gives one alternative with the range of `k` that keeps `n` within the bounds.
///
/// ```
/// assert_eq!(synckit_protocol::base64_pattern(32, 32), "^(?:(?:[A-Za-z0-9+/]{4}){10}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$");
/// ```
pub fn base64_pattern(min: usize, max: usize) -> String {
    const TAILS: [(usize, &str); 3] =
        [(0, ""), (1, "[A-Za-z0-9+/][AQgw]=="), (2, "[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=")];
    let mut alternatives = Vec::new();
    for (r, tail) in TAILS {
        if max < r {
            continue;
        }
        let (lo, hi) = (min.saturating_sub(r).div_ceil(3), (max - r) / 3);
        if lo > hi {
            continue;
        }
        let groups = match (lo, hi) {
            (0, 0) => String::new(),
            (lo, hi) if lo == hi => format!("(?:[A-Za-z0-9+/]{{4}}){{{lo}}}"),
            (lo, hi) => format!("(?:[A-Za-z0-9+/]{{4}}){{{lo},{hi}}}"),
        };
        alternatives.push(format!("{groups}{tail}"));
    }
    format!("^(?:{})$", alternatives.join("|"))
}

/// Canonical standard base64 of any length.
#[cfg_attr(not(feature = "openapi"), allow(dead_code))]
const CANONICAL: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// The largest value whose [`base64_pattern`] goes into the OpenAPI document.
#[cfg_attr(not(feature = "openapi"), allow(dead_code))]
const MAX_COUNTED_BYTES: usize = 4096;

/// The length of the base64 of `bytes` bytes.
pub const fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

#[cfg(feature = "openapi")]
pub(crate) mod schema {
    use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};

    use super::{CANONICAL, MAX_COUNTED_BYTES, base64_len, base64_pattern};

    fn base() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
    }

    /// Base64 of `min` to `max` bytes: lengths and a pattern that every accepted value matches.
    ///
    /// Up to [`MAX_COUNTED_BYTES`] the pattern counts groups and matches nothing else. Past it, such a pattern is
    /// too large for common validators (their regex engines unroll the count): the pattern only asks for canonical
    /// base64, and `maxLength` is the longest encoding that always decodes to at most `max` bytes. Only values of
    /// the last one or two bytes below the limit are then accepted without the schema saying so.
    pub(crate) fn sized(min: usize, max: usize) -> Object {
        let (description, pattern, max_length) = if min == max {
            (format!("standard base64 with padding of exactly {min} bytes"), base64_pattern(min, max), base64_len(max))
        } else if max <= MAX_COUNTED_BYTES {
            (format!("standard base64 with padding of {min} to {max} bytes"), base64_pattern(min, max), base64_len(max))
        } else {
            assert_eq!(min, 0, "a long base64 value is bounded by its length alone");
            (format!("standard base64 with padding of at most {max} bytes"), CANONICAL.to_owned(), max / 3 * 4)
        };
        base()
            .description(Some(description))
            .min_length(Some(base64_len(min)))
            .max_length(Some(max_length))
            .pattern(Some(pattern))
            .build()
    }

    impl utoipa::PartialSchema for super::Base64Bytes {
        fn schema() -> RefOr<Schema> {
            base().description(Some("standard base64 with padding")).into()
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

    /// The pattern of each small range matches the encoding of every length in it and of no other length, and
    /// never a string the decoder refuses.
    #[test]
    fn patterns_match_exactly_what_decodes_within_the_bounds() {
        for (min, max) in [(0, 0), (0, 7), (1, 5), (2, 2), (3, 9), (4, 4), (32, 32), (5, 11)] {
            let pattern = base64_pattern(min, max);
            let re = regex_lite::Regex::new(&pattern).unwrap();
            for n in 0..=14 {
                for fill in [0x00, 0xff, 0x5a] {
                    let bytes: Vec<u8> = (0..n).map(|i| fill ^ (i as u8).wrapping_mul(37)).collect();
                    let encoded = STANDARD.encode(&bytes);
                    assert_eq!(re.is_match(&encoded), (min..=max).contains(&n), "{n} bytes against {pattern}");
                    assert!(encoded.len() >= base64_len(min) || n < min);
                    assert!(encoded.len() <= base64_len(max) || n > max);
                }
            }
            // Unpadded, non-canonical trailing bits, URL-safe characters: the decoder refuses them, so must this.
            for refused in ["QQ", "QR==", "QUI", "QUJ=", "-_-_", "QUJD\n", " QUJD"] {
                assert!(STANDARD.decode(refused).is_err(), "{refused}");
                assert!(!re.is_match(refused), "{refused} against {pattern}");
            }
        }
        let canonical = regex_lite::Regex::new(CANONICAL).unwrap();
        for n in 0..=14 {
            assert!(canonical.is_match(&STANDARD.encode(vec![0xff; n])));
        }
        assert!(["QQ", "QR==", "QUJ=", "-_-_", "QUJD\n"].iter().all(|s| !canonical.is_match(s)));
    }
}
