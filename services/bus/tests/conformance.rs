//! The bus conformance suite on the in-process bus and on real NATS (127.0.0.1:4222, or SYNCKIT_TEST_NATS_URL).

use synckit_bus::conformance::*;
use synckit_bus::{CommitBus, InProcessBus, NatsBus};

fn nats_url() -> String {
    std::env::var("SYNCKIT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn nats() -> NatsBus {
    let bus = NatsBus::connect(&nats_url()).await.expect("NATS: run ops/test, or ops/ensure-nats");
    // Connecting retries in the background: wait until this client is really connected, or fail loudly.
    for _ in 0..100 {
        if bus.is_connected() {
            return bus;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("NATS at {} does not answer: run ops/test, or ops/ensure-nats", nats_url());
}

#[tokio::test]
async fn in_process_subscribers_receive_every_notice() {
    subscribers_receive_every_notice(&InProcessBus::default()).await;
}

#[tokio::test]
async fn in_process_publishing_without_subscribers_succeeds() {
    publishing_without_subscribers_succeeds(&InProcessBus::default()).await;
}

#[tokio::test]
async fn nats_subscribers_receive_every_notice() {
    subscribers_receive_every_notice(&nats().await).await;
}

#[tokio::test]
async fn nats_publishing_without_subscribers_succeeds() {
    publishing_without_subscribers_succeeds(&nats().await).await;
}

#[tokio::test]
async fn in_process_bus_is_ready() {
    a_working_bus_is_ready(&InProcessBus::default()).await;
}

#[tokio::test]
async fn nats_bus_is_ready() {
    a_working_bus_is_ready(&nats().await).await;
}

/// A NATS that does not answer: the bus starts anyway (it keeps trying in the background), but is not ready.
#[tokio::test]
async fn nats_bus_without_a_server_is_not_ready() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bus = NatsBus::connect(&format!("nats://127.0.0.1:{port}")).await.expect("the bus starts without NATS");
    for _ in 0..10 {
        let err = bus.ready().await.expect_err("no NATS listens there");
        assert!(err.to_string().contains("not connected to NATS"), "{err}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
