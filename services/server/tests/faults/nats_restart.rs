//! NATS killed (SIGKILL) and started again on the same port, twice, during live sync across two server
//! processes: the writers push through one, the live-sync devices listen on the other, so every commit notice
//! they get crossed NATS. Live sync's fallback poll is pushed past the scenario: the watchers catch up only if
//! both servers find NATS again by themselves.

use std::time::Duration;

use tokio::task::block_in_place;
use tokio::time::{Instant, sleep};

use crate::procs::{OwnNats, ServerProcess};
use crate::workload::{Fleet, Work};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart() {
    let _serial = crate::serial().await;
    let began = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut nats = block_in_place(|| OwnNats::start(dir.path()));
    // Two processes share one database: a fresh one on the test Postgres, which nothing here stops.
    let database = synckit_testkit::fresh_database().await.unwrap();
    let env = [("SYNCKIT_DATABASE_URL", database), ("SYNCKIT_NATS_URL", nats.url())];
    let ingest = ServerProcess::start(dir.path(), "ingest", &env, None).await;
    let query = ServerProcess::start(dir.path(), "query", &env, Some(ingest.api_key.clone())).await;
    let fleet = Fleet::new(&ingest.url, &query.url, &ingest.api_key, dir.path()).await;
    let run = fleet.run(Work::Changes);

    sleep(Duration::from_secs(2)).await;
    for down in [Duration::from_secs(2), Duration::from_secs(1)] {
        block_in_place(|| nats.kill());
        sleep(down).await;
        block_in_place(|| nats.up());
        sleep(Duration::from_secs(2)).await;
    }
    let recovered_at = Instant::now();
    // Longer than the 4 s a NATS client waits at most between reconnection attempts: both servers are back on
    // NATS while the writers still push, so the last pushes' notices can reach the watchers.
    sleep(Duration::from_secs(5)).await;

    let outcome = run.finish(recovered_at).await;
    if !outcome.problems.is_empty() {
        eprintln!("ingest log:\n{}", crate::procs::tail(ingest.log()));
        eprintln!("query log:\n{}", crate::procs::tail(query.log()));
    }
    outcome.report("nats-restart", "kills=2", began.elapsed());
}
