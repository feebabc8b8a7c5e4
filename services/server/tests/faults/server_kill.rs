//! The server killed with SIGKILL while pushes are under way, then started again on the same address and data:
//! on SQLite (the embedded default, its file in the data directory) and on Postgres. Whatever it acknowledged
//! before dying must be there after, once; a push whose answer died with it is retried by the SDK and must not be
//! stored twice.

use std::time::Duration;

use tokio::task::block_in_place;
use tokio::time::{Instant, sleep};

use crate::procs::ServerProcess;
use crate::workload::{Fleet, Work};

async fn kill_mid_push(name: &str, env: &[(&str, String)]) {
    let _serial = crate::serial().await;
    let began = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), "server", env, None).await;
    let fleet = Fleet::new(&server.url, &server.url, &server.api_key, dir.path()).await;
    let run = fleet.run(Work::Changes);

    sleep(Duration::from_secs(2)).await;
    let mut in_flight = 0;
    for _ in 0..2 {
        assert!(run.until_in_flight().await, "no push under way to kill the server in the middle of");
        in_flight += run.in_flight();
        block_in_place(|| server.kill());
        sleep(Duration::from_millis(500)).await;
        server.up().await;
        sleep(Duration::from_secs(2)).await;
    }
    let recovered_at = Instant::now();
    sleep(Duration::from_secs(3)).await;

    let outcome = run.finish(recovered_at).await;
    if !outcome.problems.is_empty() {
        eprintln!("server log:\n{}", crate::procs::tail(server.log()));
    }
    outcome.report(name, &format!("kills=2 in_flight_at_kill={in_flight}"), began.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_kill_sqlite() {
    kill_mid_push("server-kill-sqlite", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_kill_postgres() {
    let database = synckit_testkit::fresh_database().await.unwrap();
    kill_mid_push("server-kill-postgres", &[("SYNCKIT_DATABASE_URL", database)]).await;
}
