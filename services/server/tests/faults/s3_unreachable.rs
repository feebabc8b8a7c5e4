//! The S3 store (the test Garage) unreachable during uploads. The server's S3 endpoint is a FaultProxy in front of
//! Garage, so the signed URLs the SDK uploads to go through it too; taking the proxy down drops every open
//! connection and closes new ones at once, which is what both the server and the SDK see of a store that went
//! away. Each writer uploads a blob, then pushes a change naming it; at the end another device downloads every
//! acknowledged blob and compares it byte for byte.

use std::time::Duration;

use synckit_testkit::{FaultProxy, GARAGE_ADDR};
use tokio::time::{Instant, sleep};

use crate::procs::ServerProcess;
use crate::workload::{Fleet, Work};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable() {
    let _serial = crate::serial().await;
    let began = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s3 = synckit_testkit::garage().await.unwrap();
    let proxy = FaultProxy::start(GARAGE_ADDR.parse().unwrap()).await;
    let env = [
        ("SYNCKIT_S3_ENDPOINT", proxy.url.clone()),
        ("SYNCKIT_S3_REGION", s3.region),
        ("SYNCKIT_S3_BUCKET", s3.bucket),
        ("SYNCKIT_S3_ACCESS_KEY_ID", s3.access_key_id),
        ("SYNCKIT_S3_SECRET_ACCESS_KEY", secrecy::ExposeSecret::expose_secret(&s3.secret_access_key).to_owned()),
    ];
    let server = ServerProcess::start(dir.path(), "server", &env, None).await;
    let fleet = Fleet::new(&server.url, &server.url, &server.api_key, dir.path()).await;
    let run = fleet.run(Work::Blobs);

    sleep(Duration::from_secs(2)).await;
    for down in [Duration::from_secs(3), Duration::from_secs(1)] {
        proxy.set_up(false);
        sleep(down).await;
        proxy.set_up(true);
        sleep(Duration::from_secs(2)).await;
    }
    let recovered_at = Instant::now();
    sleep(Duration::from_secs(3)).await;

    let outcome = run.finish(recovered_at).await;
    if !outcome.problems.is_empty() {
        eprintln!("server log:\n{}", crate::procs::tail(server.log()));
    }
    outcome.report(
        "s3-unreachable",
        &format!("outages=2 requests_through_proxy={}", proxy.heads().len()),
        began.elapsed(),
    );
}
