//! The `synckit-server` binary as a process of its own on Postgres and NATS, and a signed-up device on it: what the
//! benchmarks that measure a deployed server share.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use synckit_protocol::paths;
use uuid::Uuid;

/// A running server, killed and reaped when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This build of `synckit-server`.
pub const THIS_BUILD: &str = env!("CARGO_BIN_EXE_synckit-server");

/// Creates an app in `db`, then serves `bin` (a build of `synckit-server`, [`THIS_BUILD`] unless another is compared
/// with it) on a free loopback port with `env` beside the engines and secrets, until ready. Returns the server and
/// the app's API key.
pub async fn start_server(
    bin: &str,
    db: &str,
    data: &std::path::Path,
    env: &[(&str, &str)],
) -> (ServerProcess, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let vars = [
        ("SYNCKIT_DATABASE_URL", db),
        ("SYNCKIT_NATS_URL", "nats://127.0.0.1:4222"),
        ("SYNCKIT_TOKEN_SECRET", "bench-token-secret-bench-token-secret-01"),
        ("SYNCKIT_URL_SECRET", "bench-url-secret-bench-url-secret-bench-01"),
        ("SYNCKIT_PRELOGIN_SECRET", "bench-prelogin-secret-bench-prelogin-01"),
        ("RUST_LOG", "warn"),
    ];
    let out = Command::new(bin)
        .envs(vars)
        .env("SYNCKIT_DATA_DIR", data)
        .args(["admin", "create-app", "--name", "bench"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let api_key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["api_key"].as_str().unwrap().to_owned();
    let child = Command::new(bin)
        .envs(vars)
        .envs(env.iter().copied())
        .env("SYNCKIT_DATA_DIR", data)
        .env("SYNCKIT_LISTEN", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Owned at once, so the process is killed and reaped however this ends.
    let server = ServerProcess { child, url: format!("http://{addr}") };
    for _ in 0..200 {
        if reqwest::get(format!("{}/readyz", server.url)).await.is_ok_and(|r| r.status().is_success()) {
            return (server, api_key);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

/// Signs up a user with a device: its token and id.
pub async fn user(http: &reqwest::Client, url: &str, api_key: &str) -> (String, Uuid) {
    let email = format!("{}@bench.example", Uuid::new_v4());
    let key = STANDARD.encode([7u8; 32]);
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = http.post(format!("{url}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().error_for_status().unwrap().json::<Value>().await.unwrap() }
    };
    post(paths::ACCOUNTS_REGISTER, None, json!({"email": email, "salt": STANDARD.encode([1u8; 32]), "login_key": key}))
        .await;
    let auth = post(paths::AUTH, None, json!({"email": email, "login_key": key, "api_key": api_key})).await;
    // Pushes and event streams take the device's own token, which registering the device answers.
    let device = post(paths::DEVICES, auth["token"].as_str(), json!({"name": "bench", "platform": "linux"})).await;
    (device["token"].as_str().unwrap().to_owned(), device["id"].as_str().unwrap().parse().unwrap())
}
