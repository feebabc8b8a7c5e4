//! The server killed with SIGKILL while pushes are under way, then started again on the same address and data:
//! on SQLite (the embedded default, its file in the data directory) and on Postgres. Whatever it acknowledged
//! before dying must be there after, once; a push whose answer died with it is retried by the SDK and must not be
//! stored twice.
//!
//! The writers reach the server through a FaultProxy, so that the second kill lands in the worst place on purpose:
//! the server has taken a push and answered it, the proxy holds the answer back, and the server dies. The SDK gives
//! up on that attempt after its timeout and sends the same push to the restarted server, which must recognise every
//! change in it.

use std::time::Duration;

use tokio::task::block_in_place;
use tokio::time::{Instant, sleep};

use synckit_testkit::{Fault, FaultProxy};

use crate::procs::ServerProcess;
use crate::workload::{Fleet, Work};

async fn kill_mid_push(name: &str, env: &[(&str, String)]) {
    let _serial = crate::serial().await;
    let began = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), "server", env, None).await;
    let proxy = FaultProxy::start(server.addr).await;
    let fleet = Fleet::new(&proxy.url, &server.url, &server.api_key, dir.path()).await;
    let run = fleet.run(Work::Changes);

    sleep(Duration::from_secs(2)).await;
    // First at whatever moment a push is under way.
    assert!(run.until_in_flight().await, "no push under way to kill the server in the middle of");
    let in_flight = run.in_flight();
    block_in_place(|| server.kill());
    sleep(Duration::from_millis(500)).await;
    server.up().await;
    sleep(Duration::from_secs(2)).await;

    // Then after the server answered a push whose answer has not reached its writer.
    proxy.arm("POST", "/api/sync/push", Fault::Stall);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.fired() == 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(proxy.fired(), 1, "no push came through the proxy to hold the answer of");
    sleep(Duration::from_millis(300)).await; // ample for a push of 4 changes to commit and be answered
    block_in_place(|| server.kill());
    sleep(Duration::from_millis(500)).await;
    server.up().await;
    let recovered_at = Instant::now();
    // Beyond the SDK's 5 s attempt timeout, so the writer whose answer was held has retried and pushed again.
    sleep(Duration::from_secs(7)).await;

    let outcome = run.finish(recovered_at).await;
    if !outcome.problems.is_empty() {
        eprintln!("server log:\n{}", crate::procs::tail(server.log()));
    }
    outcome.report(name, &format!("kills=2 in_flight_at_kill={in_flight} answer_held_at_kill=1"), began.elapsed());
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
