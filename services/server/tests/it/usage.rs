//! Usage and limits over HTTP: metering equals the ciphertext the test moved (pushed, pulled, uploaded, downloaded),
//! retries count once; an app at its storage limit is refused what would store more and keeps everything else; over
//! its transfer budget it is slowed, never refused for good; deleting a blob frees what it stored.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use synckit_server::admin;
use synckit_testkit::{TestServer, TestUser, b64, code, on_each_engine, random_bytes};
use uuid::Uuid;

// On the embedded default (SQLite, a local directory) and the production engines (Postgres, Garage).
on_each_engine!(
    [embedded, garage]
    metering_counts_what_moved_once,
    a_full_app_refuses_what_would_store_more_and_serves_the_rest,
    over_the_transfer_budget_traffic_is_slowed_not_refused,
);

/// An app owned by a new account, on a plan of `storage_gb` at `burst`: its console token, id and API key.
async fn owned_app(server: &TestServer, storage_gb: &str, burst: u32) -> (String, Uuid, String) {
    let console = server.console_token(&server.user().await).await;
    let (status, created) = server.post("/api/apps", Some(&console), json!({"name": "Metered"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let app_id: Uuid = created["app_id"].as_str().unwrap().parse().unwrap();
    admin::set_plan(&*server.engines.accounts, app_id, storage_gb, Some(burst)).await.unwrap();
    (console, app_id, created["api_key"].as_str().unwrap().to_owned())
}

/// Another device of `user`, in the app of `api_key`.
async fn other_device(server: &TestServer, user: &TestUser, api_key: &str) -> TestUser {
    let mut other = server.login(&user.email, &user.login_key, api_key).await;
    (other.device_id, other.token) = server.device(&other.sign_in_token, "phone").await;
    other
}

/// `n` entries of `size` random bytes.
fn entries(n: usize, size: usize) -> Vec<(Uuid, Vec<u8>)> {
    (0..n).map(|_| (Uuid::now_v7(), random_bytes(size))).collect()
}

fn payload_bytes(entries: &[(Uuid, Vec<u8>)]) -> u64 {
    entries.iter().map(|(_, p)| p.len() as u64).sum()
}

/// A raw request with its answer's headers.
async fn post(
    server: &TestServer,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = server.http.post(format!("{}{path}", server.url)).bearer_auth(token).json(&body).send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.bytes().await.unwrap();
    (status, headers, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name).map(|v| v.to_str().unwrap().parse().unwrap())
}

fn push_body(user: &TestUser, entries: &[(Uuid, Vec<u8>)]) -> Value {
    let entries: Vec<Value> = entries.iter().map(|(id, p)| json!({"change_id": id, "payload": b64(p)})).collect();
    json!({"device_id": user.device_id, "entries": entries})
}

/// The app's usage as the operator reads it, once the instance has added what it counted (about once a second):
/// the first reading whose transfer is `transfer`, or the last one after a few seconds.
async fn usage_once_counted(server: &TestServer, app_id: Uuid, transfer: u64) -> admin::Usage {
    for _ in 0..50 {
        let usage = admin::usage(&*server.engines.accounts, &*server.engines.usage, app_id).await.unwrap();
        if usage.transfer_bytes == transfer {
            return usage;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin::usage(&*server.engines.accounts, &*server.engines.usage, app_id).await.unwrap()
}

/// Uploads and confirms `bytes` as blob `hash` (through the store's signed URL), confirming twice.
async fn store_blob(server: &TestServer, user: &TestUser, hash: &str, bytes: &[u8]) {
    let declared = json!({"hash": hash, "size": bytes.len(), "checksum_sha256": b64(&Sha256::digest(bytes))});
    let (status, _, begun) = post(server, "/api/sync/blobs/upload", &user.token, declared).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let url = begun["upload_url"].as_str().unwrap();
    let url = if url.starts_with('/') { format!("{}{url}", server.url) } else { url.to_owned() };
    let mut put = server.http.put(url);
    for (name, value) in begun["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let stored = put.body(bytes.to_vec()).send().await.unwrap();
    assert!(stored.status().is_success(), "{}", stored.status());
    for _ in 0..2 {
        let (status, _, body) =
            post(server, "/api/sync/blobs/confirm", &user.token, json!({"hash": hash, "size": bytes.len()})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn metering_counts_what_moved_once(server: TestServer) {
    let (console, app_id, api_key) = owned_app(&server, "1", 5).await;
    let (ada, bob) = (server.user_in_app(&api_key).await, server.user_in_app(&api_key).await);

    // Pushed: two pushes, one of them sent twice (its answer lost, say), and a push half of which is a retry.
    let (first, second) = (entries(20, 1000), entries(5, 3000));
    for body in
        [push_body(&ada, &first), push_body(&ada, &first), push_body(&ada, &[&first[..10], &second[..]].concat())]
    {
        let (status, _, answer) = post(&server, "/api/sync/push", &ada.token, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let pushed = payload_bytes(&first) + payload_bytes(&second);
    // Pulled: everything, by another of Ada's devices, and the first page again.
    let phone = other_device(&server, &ada, &api_key).await;
    let pulled = server.pull_all(&phone.token, 0).await;
    assert_eq!(pulled.len(), 25);
    let (status, headers, page) = post(&server, "/api/sync/pull", &phone.token, json!({"cursor": 0, "limit": 3})).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let pulled_bytes = pulled.iter().map(|(_, _, p)| p.len() as u64).sum::<u64>()
        + pulled[..3].iter().map(|(_, _, p)| p.len() as u64).sum::<u64>();
    // Uploaded (confirmed twice, counted once) and downloaded twice, by Bob.
    let (blob, hash) = (random_bytes(70_000), hex::encode(random_bytes(32)));
    store_blob(&server, &bob, &hash, &blob).await;
    for _ in 0..2 {
        let (status, _, signed) = post(&server, "/api/sync/blobs/download", &bob.token, json!({"hash": hash})).await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        let url = signed["download_url"].as_str().unwrap();
        let url = if url.starts_with('/') { format!("{}{url}", server.url) } else { url.to_owned() };
        assert_eq!(server.http.get(url).send().await.unwrap().bytes().await.unwrap().len(), blob.len());
    }
    let blob_bytes = blob.len() as u64;

    let stored = pushed + blob_bytes;
    let transfer = pushed + pulled_bytes + 3 * blob_bytes;
    let usage = usage_once_counted(&server, app_id, transfer).await;
    assert_eq!(
        serde_json::to_value(&usage).unwrap(),
        json!({
            "period": synckit_protocol::plans::Period::current().to_string(),
            "stored_bytes": stored,
            "transfer_bytes": transfer,
            "storage_limit_bytes": 1_000_000_000u64,
            "transfer_limit_bytes": 5_000_000_000u64,
        })
    );
    // The headroom a device is told: what the plan leaves, as this instance sees it.
    assert_eq!(header(&headers, "synckit-storage-remaining"), Some(1_000_000_000 - pushed));
    assert!(header(&headers, "synckit-transfer-remaining").unwrap() <= 5_000_000_000 - pushed);

    // The owner sees the same, per user and per day.
    let (status, report) = server.get(&format!("/api/apps/{app_id}/usage"), Some(&console)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((report["stored_bytes"].as_u64(), report["transfer_bytes"].as_u64()), (Some(stored), Some(transfer)));
    let users = report["users"].as_array().unwrap();
    let of = |user: &TestUser| users.iter().find(|u| u["user_id"] == user.user_id.to_string()).cloned();
    assert_eq!(
        of(&ada),
        Some(json!({"user_id": ada.user_id, "stored_bytes": pushed, "transfer_bytes": pushed + pulled_bytes}))
    );
    assert_eq!(
        of(&bob),
        Some(json!({"user_id": bob.user_id, "stored_bytes": blob_bytes, "transfer_bytes": 3 * blob_bytes}))
    );
    let today = report["days"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((today["stored_bytes"].as_u64(), today["transfer_bytes"].as_u64()), (Some(stored), Some(transfer)));
    let (status, refused) =
        server.get(&format!("/api/apps/{app_id}/usage"), Some(&server.console_token(&bob).await)).await;
    assert_eq!((status, code(&refused)), (StatusCode::NOT_FOUND, "app_not_found"), "only the owner");

    // Deleting the blob frees what it stored; what it moved stays moved.
    let deleted = server.http.delete(format!("{}/api/sync/blobs/{hash}", server.url)).bearer_auth(&bob.token);
    assert_eq!(deleted.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let usage = usage_once_counted(&server, app_id, transfer).await;
    assert_eq!((usage.stored_bytes, usage.transfer_bytes), (pushed, transfer));
}

async fn a_full_app_refuses_what_would_store_more_and_serves_the_rest(server: TestServer) {
    // 10,000 bytes of storage, and transfer enough not to matter here.
    let (_, app_id, api_key) = owned_app(&server, "0.00001", 20).await;
    let ada = server.user_in_app(&api_key).await;
    let phone = other_device(&server, &ada, &api_key).await;
    let (blob, hash) = (random_bytes(500), hex::encode(random_bytes(32)));
    store_blob(&server, &ada, &hash, &blob).await;
    let kept = entries(9, 1000);
    let (status, headers, _) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &kept)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "synckit-storage-remaining"), Some(500));

    // One more byte than fits: refused whole, nothing stored.
    let over = entries(1, 501);
    let (status, headers, refused) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &over)).await;
    assert_eq!((status, code(&refused)), (StatusCode::FORBIDDEN, "quota_exceeded"), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("room for 500"), "{refused}");
    assert_eq!(headers.get(RETRY_AFTER), None, "no retry helps until something changes");
    let (status, refused) = server
        .post(
            "/api/sync/blobs/upload",
            Some(&ada.token),
            json!({"hash": hex::encode([1u8; 32]), "size": 2000, "checksum_sha256": b64(&[0; 32])}),
        )
        .await;
    assert_eq!((status, code(&refused)), (StatusCode::FORBIDDEN, "quota_exceeded"), "{refused}");

    // Everything else goes on: pulls, status, downloads, and what fits.
    assert_eq!(server.pull_all(&phone.token, 0).await.len(), 9);
    let (status, _) = server.get("/api/sync/status", Some(&phone.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, signed) = post(&server, "/api/sync/blobs/download", &phone.token, json!({"hash": hash})).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let fits = entries(1, 500);
    let (status, headers, _) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &fits)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "synckit-storage-remaining"), Some(0));

    // A larger plan lets the refused push through, once.
    admin::set_plan(&*server.engines.accounts, app_id, "0.00002", Some(20)).await.unwrap();
    let accepted = 'retry: {
        for _ in 0..30 {
            let (status, _, answer) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &over)).await;
            if status == StatusCode::OK {
                break 'retry answer;
            }
            assert_eq!(code(&answer), "quota_exceeded");
            // The instance reads the plan again within a second.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the larger plan never let the push through");
    };
    assert_eq!(accepted["accepted"], 1);
    let (_, _, again) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &over)).await;
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(1)));
    assert_eq!(server.pull_all(&phone.token, 0).await.len(), 11);
}

async fn over_the_transfer_budget_traffic_is_slowed_not_refused(server: TestServer) {
    // 1 MB stored at 1x: a transfer budget of 1 MB a period.
    let (_, app_id, api_key) = owned_app(&server, "0.001", 1).await;
    let ada = server.user_in_app(&api_key).await;
    let phone = other_device(&server, &ada, &api_key).await;
    let pushed = entries(10, 60_000);
    let (status, _, _) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &pushed)).await;
    assert_eq!(status, StatusCode::OK);
    // 600 KB pushed, and 600 KB pulled: past the budget.
    let (status, headers, _) = post(&server, "/api/sync/pull", &phone.token, json!({"cursor": 0})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "synckit-transfer-remaining"), Some(0));

    // Now the app's traffic is paced: the pull that went past the budget took its bytes from the pace, so the next
    // request, at once, is asked to wait for them.
    let (status, headers, slowed) = post(&server, "/api/sync/pull", &phone.token, json!({"cursor": 0})).await;
    assert_eq!((status, code(&slowed)), (StatusCode::TOO_MANY_REQUESTS, "transfer_slowed"), "{slowed}");
    let wait: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&wait), "600 KB at 256 KiB/s, less a second's allowance: {wait} s");
    let (status, _, slowed) = post(&server, "/api/sync/push", &ada.token, push_body(&ada, &entries(1, 10))).await;
    assert_eq!((status, code(&slowed)), (StatusCode::TOO_MANY_REQUESTS, "transfer_slowed"), "pushes too");
    // Waiting as asked, it goes through: slowed, never refused for good.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, _, page) = post(&server, "/api/sync/pull", &phone.token, json!({"cursor": 0})).await;
    assert_eq!((status, page["entries"].as_array().map(Vec::len)), (StatusCode::OK, Some(10)), "{page}");

    // The excess is metered, and the plan's price is what it was.
    let usage = usage_once_counted(&server, app_id, 600_000 * 3).await;
    assert_eq!((usage.transfer_bytes, usage.transfer_limit_bytes), (1_800_000, Some(1_000_000)));
}
