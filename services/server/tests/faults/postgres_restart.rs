//! Postgres restarted under pushes and pulls: once as in a crash (`pg_ctl stop -m immediate`, every backend gone at
//! once, WAL replayed at the next start) and once cleanly (`-m fast`). The server stays up throughout and must
//! find its database again by itself.

use std::time::Duration;

use tokio::task::block_in_place;
use tokio::time::{Instant, sleep};

use crate::procs::{OwnPostgres, ServerProcess};
use crate::workload::{Fleet, Work};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart() {
    let _serial = crate::serial().await;
    let began = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut pg = block_in_place(OwnPostgres::start);
    let server = ServerProcess::start(dir.path(), "server", &[("SYNCKIT_DATABASE_URL", pg.url())], None).await;
    let fleet = Fleet::new(&server.url, &server.url, &server.api_key, dir.path()).await;
    let run = fleet.run(Work::Changes);

    sleep(Duration::from_secs(2)).await;
    block_in_place(|| pg.down("immediate"));
    sleep(Duration::from_secs(2)).await;
    block_in_place(|| pg.up());
    sleep(Duration::from_secs(2)).await;
    block_in_place(|| pg.down("fast"));
    sleep(Duration::from_secs(1)).await;
    block_in_place(|| pg.up());
    let recovered_at = Instant::now();
    sleep(Duration::from_secs(3)).await;

    let outcome = run.finish(recovered_at).await;
    if !outcome.problems.is_empty() {
        eprintln!("server log:\n{}", crate::procs::tail(server.log()));
        eprintln!("postgres log:\n{}", crate::procs::tail(&pg.log()));
    }
    outcome.report("postgres-restart", "restarts=2 (immediate, fast)", began.elapsed());
}
