//! The counts the services keep as they work, on the process's global OpenTelemetry meter.
//!
//! That meter is the no-op one unless the server exports metrics (`OTEL_EXPORTER_OTLP_ENDPOINT`), so the counts cost
//! nothing otherwise. The instruments are made at their first use, which comes after the server installed its meter
//! provider: it does so before it serves anything. Their names and units are listed in docs/operations.md.

use std::sync::LazyLock;

use opentelemetry::metrics::Counter;

/// The name of the meter every SyncKit instrument belongs to.
pub const METER: &str = "synckit";

struct Counters {
    entries_pushed: Counter<u64>,
    entries_pulled: Counter<u64>,
    blob_bytes_confirmed: Counter<u64>,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| {
    let meter = opentelemetry::global::meter(METER);
    Counters {
        entries_pushed: meter
            .u64_counter("synckit.entries.pushed")
            .with_unit("{entry}")
            .with_description("Entries stored by pushes; a retried push's entries count once")
            .build(),
        entries_pulled: meter
            .u64_counter("synckit.entries.pulled")
            .with_unit("{entry}")
            .with_description("Entries served by pulls")
            .build(),
        blob_bytes_confirmed: meter
            .u64_counter("synckit.blob.confirmed.size")
            .with_unit("By")
            .with_description("Bytes of blobs confirmed as uploaded")
            .build(),
    }
});

/// A push stored `n` new entries.
pub fn entries_pushed(n: u64) {
    COUNTERS.entries_pushed.add(n, &[]);
}

/// A pull served `n` entries.
pub fn entries_pulled(n: u64) {
    COUNTERS.entries_pulled.add(n, &[]);
}

/// A blob of `bytes` was confirmed.
pub fn blob_bytes_confirmed(bytes: u64) {
    COUNTERS.blob_bytes_confirmed.add(bytes, &[]);
}
