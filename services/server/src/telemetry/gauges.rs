//! Gauges read each time metrics are collected, from weak references: a gauge of something gone reports nothing.

use std::sync::{Arc, Weak};

use opentelemetry::KeyValue;
use synckit_http::metrics::METER;
use synckit_query::Hub;
use synckit_store_postgres::PgStore;

/// `synckit.events.connections`: the event streams open on this instance.
pub fn observe_event_streams(hub: &Arc<Hub>) {
    let hub = Arc::downgrade(hub);
    opentelemetry::global::meter(METER)
        .u64_observable_gauge("synckit.events.connections")
        .with_unit("{connection}")
        .with_description("Event streams (live sync connections) open on this instance")
        .with_callback(move |gauge| {
            if let Some(hub) = hub.upgrade() {
                gauge.observe(hub.connections() as u64, &[]);
            }
        })
        .build();
}

/// The Postgres pools' usage, by pool (`main`, and `token` for the token checks): connections open by state (`used`,
/// `idle`), the most each may open, and the requests waiting for one.
pub fn observe_pools(store: &Arc<PgStore>) {
    let meter = opentelemetry::global::meter(METER);
    let pools = |store: &Weak<PgStore>| store.upgrade().into_iter().flat_map(|s| s.pool_status());
    let name = |pool: &'static str| KeyValue::new("db.client.connection.pool.name", pool);

    let weak = Arc::downgrade(store);
    meter
        .u64_observable_gauge("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("Database connections open, by pool and state (used or idle)")
        .with_callback(move |gauge| {
            for (pool, status) in pools(&weak) {
                let used = status.size.saturating_sub(status.available) as u64;
                gauge.observe(used, &[name(pool), KeyValue::new("db.client.connection.state", "used")]);
                gauge.observe(
                    status.available as u64,
                    &[name(pool), KeyValue::new("db.client.connection.state", "idle")],
                );
            }
        })
        .build();
    let weak = Arc::downgrade(store);
    meter
        .u64_observable_gauge("db.client.connection.max")
        .with_unit("{connection}")
        .with_description("Database connections each pool may open at most")
        .with_callback(move |gauge| {
            for (pool, status) in pools(&weak) {
                gauge.observe(status.max_size as u64, &[name(pool)]);
            }
        })
        .build();
    let weak = Arc::downgrade(store);
    meter
        .u64_observable_gauge("db.client.connection.pending_requests")
        .with_unit("{request}")
        .with_description("Requests waiting for a database connection, by pool")
        .with_callback(move |gauge| {
            for (pool, status) in pools(&weak) {
                gauge.observe(status.waiting as u64, &[name(pool)]);
            }
        })
        .build();
}
