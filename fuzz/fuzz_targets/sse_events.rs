//! Server-sent events as live sync reads them (`GET /api/sync/events`, through the SDK's own parser over its HTTP
//! body): the events, and the cursor each announces.
//!
//! Input: cuts ‖ body (see `synckit_fuzz::split`).
//!
//! Checks: the events are the same whether the body arrives whole, cut where the input says, or a byte at a time,
//! as a network may deliver it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synckit::fuzzing::live_events;
use synckit_fuzz::{pieces, split};

fuzz_target!(|data: &[u8]| {
    let (at, body) = split(data);
    let whole = live_events(vec![body.to_vec()]);
    let cut = live_events(pieces(body, &at).into_iter().map(<[u8]>::to_vec).collect());
    assert_eq!(whole, cut, "cutting the stream changed its events");
    if body.len() <= 512 {
        let bytes = live_events(body.iter().map(|b| vec![*b]).collect());
        assert_eq!(whole, bytes, "reading the stream a byte at a time changed its events");
    }
});
