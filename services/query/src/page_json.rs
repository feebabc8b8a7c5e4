//! The pull response, written straight into one buffer.
//!
//! A page is ~700 KB of JSON, nearly all of it base64. Through serde each payload becomes a `String` of its own and
//! is then scanned for characters to escape, of which base64, UUIDs, numbers and RFC 3339 timestamps have none.
//! Writing the page directly skips both, and the test below holds it byte for byte to what serde writes for
//! [`PullResponse`](synckit_protocol::sync::PullResponse).

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use synckit_store::Entry;
use time::format_description::well_known::Rfc3339;

/// An entry's JSON beside its payload's base64, at most: the names and punctuation (~130 bytes, a superseded
/// entry's mark included), a seq of up to 20 digits, two UUIDs and a timestamp of up to 30 characters (nanoseconds). An overrun would double the buffer of a
/// whole page, and put it past the pull's memory reservation.
pub(crate) const JSON_BYTES_PER_ENTRY: u64 = 212;

/// `{"entries":[…],"cursor":…,"has_more":…}` for `entries`.
pub(crate) fn encode_page(entries: &[Entry], cursor: u64, has_more: bool) -> Vec<u8> {
    let payload_bytes: usize = entries.iter().map(|e| e.payload.len().div_ceil(3) * 4).sum();
    let mut out = Vec::with_capacity(payload_bytes + entries.len() * JSON_BYTES_PER_ENTRY as usize + 64);
    out.extend_from_slice(b"{\"entries\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(
            out,
            "{{\"seq\":{},\"change_id\":\"{}\",\"device_id\":\"{}\",\"payload\":\"",
            e.seq, e.change_id, e.device_id
        )
        .expect("writing to a Vec cannot fail");
        let start = out.len();
        out.resize(start + e.payload.len().div_ceil(3) * 4, 0);
        let written = STANDARD.encode_slice(&e.payload, &mut out[start..]).expect("the buffer was sized for it");
        out.truncate(start + written);
        let created_at = e.created_at.format(&Rfc3339).expect("stored timestamps format as RFC 3339");
        write!(out, "\",\"created_at\":\"{created_at}\"").expect("writing to a Vec cannot fail");
        out.extend_from_slice(if e.superseded { b",\"superseded\":true}" } else { b"}" });
    }
    write!(out, "],\"cursor\":{cursor},\"has_more\":{has_more}}}").expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use synckit_protocol::sync::{PullResponse, PulledEntry};
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn matches_what_serde_writes() {
        let mut entries: Vec<Entry> = [0usize, 1, 2, 3, 1000]
            .into_iter()
            .enumerate()
            .map(|(i, len)| Entry {
                seq: i as u64 + 7,
                change_id: Uuid::now_v7(),
                device_id: Uuid::now_v7(),
                payload: (0..len).map(|b| (b * 37 % 256) as u8).collect(),
                created_at: OffsetDateTime::from_unix_timestamp_nanos(1_795_000_000_123_456_000 + i as i128).unwrap(),
                superseded: false,
            })
            .collect();
        // The longest seq there is, and timestamps to the nanosecond: the most JSON an entry writes.
        entries[4].seq = u64::MAX;
        entries[0].superseded = true;
        for (slice, cursor, has_more) in [(&entries[..], 11, true), (&entries[..0], 3, false)] {
            let payload_bytes: usize = slice.iter().map(|e| e.payload.len().div_ceil(3) * 4).sum();
            let encoded = encode_page(slice, cursor, has_more);
            let sized = payload_bytes + slice.len() * JSON_BYTES_PER_ENTRY as usize + 64;
            assert_eq!(encoded.capacity(), sized, "the page was written into the buffer it was sized for");
            let wire = PullResponse {
                entries: slice
                    .iter()
                    .map(|e| PulledEntry {
                        seq: e.seq,
                        change_id: e.change_id,
                        device_id: e.device_id,
                        payload: e.payload.clone().into(),
                        created_at: e.created_at,
                        superseded: e.superseded,
                    })
                    .collect(),
                cursor,
                has_more,
            };
            let expected = serde_json::to_string(&wire).unwrap();
            assert_eq!(String::from_utf8(encode_page(slice, cursor, has_more)).unwrap(), expected);
        }
    }
}
