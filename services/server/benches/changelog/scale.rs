//! Push and pull against the stream's length: the cost of one push or one page must not grow with the entries the
//! stream already holds.
//!
//! On each engine, before anything is filled, the server's connections push into a stream of their own often enough
//! to cache their statements' plans on a near-empty database, as a server that started on a young database has.
//! Then:
//! - fill: `pushers` devices of one account push `fill` entries (500 × 1 KiB a push) into their one stream through
//!   the API, all at once; the figure is the time it takes.
//! - the large streams get their entries straight from the database (one `INSERT … SELECT generate_series` on
//!   Postgres, one recursive-CTE insert in one transaction on SQLite), with 1 KiB payloads as pushes carry: filling
//!   a million entries through the API would take most of the run.
//! - push: into each stream (holding `sizes` entries), `samples` pushes of 500 × 1 KiB one after another; latency
//!   p50 and p90, and entries/s at the p50. Reference: the push into the empty stream.
//! - pull: `samples` pages of 500 at cursors spread evenly over each stream; latency p50 and p90, and entries/s at
//!   the p50. Reference (Postgres): the same range scans issued directly, p50 per page.

use std::time::{Duration, Instant};

use futures::future::join_all;
use synckit_testkit::{TestServer, engine};
use tokio_postgres::NoTls;

use super::{Client, ENTRIES_PER_PUSH, PAYLOAD_BYTES, batch, client, common, pull, push, rate, sign_in};

pub struct Options {
    sizes: Vec<u64>,
    samples: usize,
    fill: usize,
    pushers: usize,
}

pub fn options() -> Options {
    let sizes: String = common::flag("--sizes", "0,100000,1000000".to_owned());
    Options {
        sizes: sizes.split(',').map(|s| s.trim().parse().expect("--sizes takes numbers separated by commas")).collect(),
        samples: common::flag("--samples", 30),
        fill: common::flag("--fill", 200_000),
        pushers: common::flag("--pushers", 4),
    }
}

pub async fn run(o: &Options) {
    println!(
        "\nPush and pull against the stream's length: streams of {:?} entries, {} pushes and {} pages each; \
         fill of {} entries from {} pushers",
        o.sizes, o.samples, o.samples, o.fill, o.pushers
    );
    let mut fills = Vec::new();
    let mut rows = Vec::new();
    for (name, engine) in [("postgres", engine::postgres()), ("sqlite", engine::embedded())] {
        let server = TestServer::start_with(engine, |s| s.database.max_connections = 32).await;
        let (url, api_key) = (server.url.as_str(), server.api_key.as_str());

        // Every connection of the pool runs the push and pull statements more than the five times after which
        // Postgres may settle on a generic plan, while the tables are still (nearly) empty.
        let warm: Vec<Client> = join_all((0..8).map(|_| client(url, api_key))).await;
        join_all(warm.iter().map(|c| async move {
            for _ in 0..8 {
                push(c, &batch().0).await;
                pull_page(c, 0).await;
            }
        }))
        .await;

        let fill_time = fill_through_api(url, api_key, o.fill, o.pushers).await;
        fills.push(format!(
            "| {name} | {} | {} | {:.1} s | {} |",
            o.pushers,
            o.fill,
            fill_time.as_secs_f64(),
            rate(o.fill as f64 / fill_time.as_secs_f64())
        ));

        let mut streams = Vec::new();
        for &size in &o.sizes {
            let c = client(url, api_key).await;
            let started = Instant::now();
            bulk_fill(&server, &c, size).await;
            if size > 0 {
                println!(
                    "{name}: {size} entries written straight to the database in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            streams.push((size, c));
        }

        let mut empty_push = None;
        let mut page_100k = None;
        for (size, c) in &streams {
            let (push_p50, push_p90, head) = pushes(c, o.samples).await;
            let cursors: Vec<u64> =
                (0..o.samples as u64).map(|i| i * head.saturating_sub(500) / (o.samples as u64 - 1).max(1)).collect();
            let (page_p50, page_p90) = pages(c, &cursors).await;
            let scan_p50 = match server.database_url() {
                Some(db) => Some(raw_pages(db, c, &cursors).await),
                None => None,
            };
            let empty_push = *empty_push.get_or_insert(push_p50);
            if *size == 100_000 {
                page_100k = Some(page_p50);
            }
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            let ratio = |a: Duration, b: Duration| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64());
            rows.push(format!(
                "| {name} | {size} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                ms(push_p50),
                ms(push_p90),
                rate(ENTRIES_PER_PUSH as f64 / push_p50.as_secs_f64()),
                ratio(push_p50, empty_push),
                ms(page_p50),
                ms(page_p90),
                rate(ENTRIES_PER_PUSH as f64 / page_p50.as_secs_f64()),
                page_100k.filter(|_| *size >= 100_000).map_or_else(|| "n/a".to_owned(), |p| ratio(page_p50, p)),
                scan_p50.map_or_else(|| "n/a".to_owned(), ms),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("\n| engine | pushers | entries | fill time | entries/s |");
    println!("| --- | --- | --- | --- | --- |");
    fills.iter().for_each(|r| println!("{r}"));
    println!(
        "\n| engine | stream holds | push p50 | push p90 | push entries/s | push / empty | page p50 | page p90 | \
         pull entries/s | page / 100k | raw scan page p50 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    rows.iter().for_each(|r| println!("{r}"));
}

/// `pushers` devices of one new account push `entries` into its stream, all at once; the time it takes.
async fn fill_through_api(url: &str, api_key: &str, entries: usize, pushers: usize) -> Duration {
    let first = client(url, api_key).await;
    let mut devices = vec![first];
    for i in 1..pushers {
        let (email, login_key) = (devices[0].email.clone(), devices[0].login_key.clone());
        devices.push(sign_in(url, api_key, &email, &login_key, &format!("pusher {i}")).await);
    }
    let per_pusher = entries / pushers / ENTRIES_PER_PUSH;
    let bodies: Vec<Vec<Vec<u8>>> = (0..pushers).map(|_| (0..per_pusher).map(|_| batch().0).collect()).collect();
    let started = Instant::now();
    join_all(devices.iter().zip(&bodies).map(|(c, bodies)| async move {
        for body in bodies {
            push(c, body).await;
        }
    }))
    .await;
    started.elapsed()
}

/// Gives `c`'s stream (new, never pushed to) `size` entries of `PAYLOAD_BYTES`, straight in the database.
async fn bulk_fill(server: &TestServer, c: &Client, size: u64) {
    if size == 0 {
        return;
    }
    let (app, user, device) = (c.app_id.simple(), c.user_id.simple(), c.device_id.simple());
    let sql = match server.database_url() {
        // md5 gives 16 bytes: 64 of them make one distinct payload of 1 KiB.
        Some(_) => format!(
            "INSERT INTO streams (app_id, user_id, head) VALUES ('{app}', '{user}', {size}); \
             INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload) \
                 SELECT '{app}', '{user}', seq, gen_random_uuid(), '{device}', \
                        decode(repeat(md5(seq::text), {}), 'hex') \
                 FROM generate_series(1, {size}) AS seq",
            PAYLOAD_BYTES / 16
        ),
        None => format!(
            "BEGIN; \
             INSERT INTO streams (app_id, user_id, head) VALUES (x'{app}', x'{user}', {size}); \
             WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < {size}) \
             INSERT INTO changes (app_id, user_id, seq, change_id, device_id, payload, created_at) \
                 SELECT x'{app}', x'{user}', seq, randomblob(16), x'{device}', randomblob({PAYLOAD_BYTES}), \
                        CAST(unixepoch('subsec') * 1000000 AS INTEGER) \
                 FROM n; \
             COMMIT"
        ),
    };
    server.execute(&sql).await;
}

/// `samples` pushes one after another: p50, p90 and the stream's head after them.
async fn pushes(c: &Client, samples: usize) -> (Duration, Duration, u64) {
    let bodies: Vec<Vec<u8>> = (0..samples).map(|_| batch().0).collect();
    let mut times = Vec::with_capacity(samples);
    let mut head = 0;
    for body in &bodies {
        let started = Instant::now();
        head = push(c, body).await;
        times.push(started.elapsed());
    }
    let (p50, p90) = percentiles(times);
    (p50, p90, head)
}

/// One page of 500 after each cursor, one after another: p50 and p90.
async fn pages(c: &Client, cursors: &[u64]) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(cursors.len());
    for &cursor in cursors {
        let started = Instant::now();
        let n = pull_page(c, cursor).await;
        times.push(started.elapsed());
        assert_eq!(n, ENTRIES_PER_PUSH, "a full page after cursor {cursor}");
    }
    percentiles(times)
}

/// One page after `cursor`, decoded as an SDK does: the number of entries.
async fn pull_page(c: &Client, cursor: u64) -> usize {
    pull(c, cursor).await.entries.len()
}

/// The same pages read directly from Postgres: p50 per page.
async fn raw_pages(db_url: &str, c: &Client, cursors: &[u64]) -> Duration {
    let (client, conn) = tokio_postgres::connect(db_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let stmt = client
        .prepare(
            "SELECT seq, change_id, device_id, payload, created_at FROM changes \
             WHERE app_id = $1 AND user_id = $2 AND seq > $3 ORDER BY seq LIMIT 500",
        )
        .await
        .unwrap();
    let mut times = Vec::with_capacity(cursors.len());
    for &cursor in cursors {
        let started = Instant::now();
        let rows = client.query(&stmt, &[&c.app_id, &c.user_id, &(cursor as i64)]).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(rows.len(), ENTRIES_PER_PUSH);
    }
    percentiles(times).0
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}
