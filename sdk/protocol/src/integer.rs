//! Non-negative integers as JSON Schema counts them: `228`, and also `228.0` or `2.28e2`, which JSON may write for
//! the same number (Python's `json` writes a float that way, and the OpenAPI document's `type: integer` admits it).
//! serde's own integer types refuse the written fraction; these accept it when it is zero, and refuse a real
//! fraction, a negative number and anything out of the type's range. For `#[serde(deserialize_with = …)]`.

use std::fmt;

use serde::Deserializer;
use serde::de::{Error, Unexpected, Visitor};

/// An integer of type `T`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    match deserializer.deserialize_any(Integer)? {
        Some(value) => in_range(value),
        None => Err(D::Error::invalid_type(Unexpected::Unit, &Integer)),
    }
}

/// An optional integer of type `T`: `null` (or, with `#[serde(default)]`, nothing) is `None`.
pub(crate) fn option<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_any(Integer)?.map(in_range).transpose()
}

/// A list of sequence numbers: integers of 0 to `i64::MAX`, the largest a stream can number.
pub(crate) fn sequence_numbers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    struct Numbers;
    impl<'de> Visitor<'de> for Numbers {
        type Value = Vec<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of sequence numbers")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut numbers = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(512));
            while let Some(SequenceNumber(n)) = seq.next_element()? {
                numbers.push(n);
            }
            Ok(numbers)
        }
    }
    deserializer.deserialize_seq(Numbers)
}

/// One of [`sequence_numbers`].
struct SequenceNumber(u64);

impl<'de> serde::Deserialize<'de> for SequenceNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n: i64 = deserialize(deserializer)?;
        Ok(Self(n as u64))
    }
}

fn in_range<T: TryFrom<u64>, E: Error>(value: u64) -> Result<T, E> {
    T::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &"an integer within range"))
}

struct Integer;

impl Visitor<'_> for Integer {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v).map(Some).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
        // 2^64, the first float past u64::MAX; below it every whole float converts exactly.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            Ok(Some(v as u64))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::deserialize")]
        count: u64,
        #[serde(default, deserialize_with = "super::option")]
        limit: Option<u32>,
        #[serde(default, deserialize_with = "super::sequence_numbers")]
        seqs: Vec<u64>,
    }

    fn read(json: &str) -> Result<Sample, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_any_notation_are_read_and_others_refused() {
        let sample = |count, limit| Ok(Sample { count, limit, seqs: Vec::new() });
        assert_eq!(read(r#"{"count": 228}"#), sample(228, None));
        assert_eq!(read(r#"{"count": 228.0, "limit": 5.0}"#), sample(228, Some(5)));
        assert_eq!(read(r#"{"count": 2.28e2, "limit": null}"#), sample(228, None));
        assert_eq!(read(r#"{"count": 18446744073709551615}"#), sample(u64::MAX, None));
        assert_eq!(read(r#"{"count": -0.0}"#), sample(0, None));
        for refused in [
            r#"{"count": 1.5}"#,
            r#"{"count": -1}"#,
            r#"{"count": -1.0}"#,
            r#"{"count": 18446744073709551616}"#,
            r#"{"count": 1e30}"#,
            r#"{"count": null}"#,
            r#"{"count": "1"}"#,
            r#"{"count": 1, "limit": 4294967296}"#,
            r#"{"count": 1, "limit": 0.5}"#,
            r#"{"count": 1, "seqs": [9223372036854775808]}"#,
            r#"{"count": 1, "seqs": [1, -1]}"#,
            r#"{"count": 1, "seqs": 1}"#,
        ] {
            assert!(read(refused).is_err(), "{refused}");
        }
        assert!(read(r#"{"limit": 1}"#).unwrap_err().contains("missing field `count`"));
        let seqs = read(r#"{"count": 0, "seqs": [1, 2.0, 9223372036854775807]}"#).unwrap().seqs;
        assert_eq!(seqs, [1, 2, i64::MAX as u64]);
    }
}
