//! The route table against the routers, and the gateway made from it against the real Caddy (`ops/ensure-caddy`
//! installs it; these tests fail, loudly, without it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use synckit_server::Role;
use synckit_server::gateway::{ROUTES, Served};
use synckit_testkit::{TestServer, code, engine, entries};
use uuid::Uuid;

/// A route's path with its `{name}` segments filled in as a client would: ids, and a blob name of the right form.
fn concrete(path: &str) -> String {
    let nil = Uuid::nil().to_string();
    path.replace("{id}", &nil)
        .replace("{app}", &nil)
        .replace("{user}", &nil)
        .replace("{name}", &"0".repeat(64))
        .replace("{hash}", &"0".repeat(64))
}

/// Every role's process serves exactly the table's paths of its role (and `all` every one), plus the paths every
/// instance answers. The paths probed come from the protocol and the routers' own constants as well as from the
/// table, so a route served but left out of the table fails here, as does a table entry no router serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_serves_exactly_its_routes_in_the_table() {
    use synckit_protocol::paths;
    let local_object = format!("{}/{{app}}/{{user}}/{{name}}", paths::BLOBS_LOCAL);
    let mut candidates: Vec<String> = ROUTES.iter().map(|r| r.path.to_owned()).collect();
    candidates.extend(paths::ALL.iter().map(|p| (*p).to_owned()));
    candidates.extend([local_object, paths::OPENAPI.to_owned(), "/healthz".to_owned(), "/readyz".to_owned()]);
    candidates.sort();
    candidates.dedup();
    for role in [Role::Auth, Role::Ingest, Role::Query, Role::Blob, Role::All] {
        let app = TestServer::start_with(engine::embedded(), |s| s.role = role).await;
        for path in &candidates {
            let url = format!("{}{}", app.url, concrete(path));
            let mut served = Vec::new();
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let resp = app.http.request(method.parse().unwrap(), &url).send().await.unwrap();
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                if !matches!(body["error"]["code"].as_str(), Some("not_found" | "method_not_allowed")) {
                    served.push(method);
                } else if body["error"]["code"] == "not_found" {
                    assert_eq!(status, StatusCode::NOT_FOUND);
                }
            }
            let route = ROUTES.iter().find(|r| r.path == path.as_str());
            let expected = match route.map(|r| r.served) {
                Some(Served::ByRole(owner)) => role.runs(owner),
                Some(Served::ByAny | Served::ByEachAboutItself) => true,
                None => false,
            };
            assert_eq!(!served.is_empty(), expected, "{role:?} {path}: served for {served:?}, table: {route:?}");
        }
    }
}

/// The `synckit-server` binary's `gateway` command.
fn generate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_synckit-server")).arg("gateway").args(args).output().unwrap()
}

/// The installed Caddy, or a failure that says how to install it.
fn caddy() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join("caddy");
        if path.exists() {
            return path;
        }
    }
    panic!("caddy is not installed: run ops/ensure-caddy (ops/test does)");
}

fn upstream_args<'a>(auth: &'a str, ingest: &'a str, query: &'a str, blob: &'a str) -> Vec<&'a str> {
    vec!["--auth", auth, "--ingest", ingest, "--query", query, "--blob", blob]
}

/// Caddy itself accepts the generated configuration, and reads it as meant: the listen address, every path to its
/// role's instances with health checks on `/readyz` and retries, the event stream unbuffered.
#[test]
fn the_generated_gateway_is_valid_caddy() {
    let args = upstream_args(
        "127.0.0.1:9001",
        "127.0.0.1:9002,127.0.0.1:9003",
        "127.0.0.1:9004,127.0.0.1:9005",
        "127.0.0.1:9006",
    );
    let out = generate(&[&["--listen", "127.0.0.1:18999"][..], args.as_slice()].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, &out.stdout).unwrap();
    let adapted = Command::new(caddy())
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&adapted.stderr);
    assert!(adapted.status.success(), "caddy adapt refused the generated file: {stderr}");
    assert!(!stderr.to_lowercase().contains("warn"), "caddy adapt warns: {stderr}");
    let config: Value = serde_json::from_slice(&adapted.stdout).unwrap();
    let server = &config["apps"]["http"]["servers"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(server["listen"], json!(["127.0.0.1:18999"]));

    // Every reverse proxy, with the paths that lead to it.
    let mut proxies: Vec<(Vec<String>, Value)> = Vec::new();
    collect(server, &mut Vec::new(), &mut proxies);
    let upstreams_of = |path: &str| -> Vec<String> {
        let (_, proxy) = proxies
            .iter()
            .find(|(paths, _)| paths.iter().any(|p| p == path))
            .unwrap_or_else(|| panic!("no proxy for {path}"));
        proxy["upstreams"].as_array().unwrap().iter().map(|u| u["dial"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(upstreams_of("/api/sync/push"), ["127.0.0.1:9002", "127.0.0.1:9003"]);
    assert_eq!(upstreams_of("/api/sync/pull"), ["127.0.0.1:9004", "127.0.0.1:9005"]);
    assert_eq!(upstreams_of("/api/sync/events"), ["127.0.0.1:9004", "127.0.0.1:9005"]);
    assert_eq!(upstreams_of("/api/sync/devices/*"), ["127.0.0.1:9001"]);
    assert_eq!(upstreams_of("/api/sync/blobs/local/*"), ["127.0.0.1:9006"]);
    assert_eq!(upstreams_of("/api/openapi.json").len(), 6, "any instance serves the document");
    for (paths, proxy) in &proxies {
        let active = &proxy["health_checks"]["active"];
        assert_eq!(active["uri"], "/readyz", "{paths:?}");
        assert!(active["interval"].as_u64().unwrap() <= 2_000_000_000, "{paths:?}: checked at least every 2 s");
        assert!(active["timeout"].as_u64().is_some(), "{paths:?}");
        // Active checks alone take instances out (gateway.rs says why passive ones would do harm on Caddy 2.6).
        assert!(proxy["health_checks"]["passive"].is_null(), "{paths:?}");
        assert!(proxy["load_balancing"]["try_duration"].as_u64().unwrap() > 0, "{paths:?}: refused requests retried");
        let unbuffered = proxy["flush_interval"] == json!(-1);
        assert_eq!(unbuffered, paths.iter().any(|p| p == "/api/sync/events"), "{paths:?}");
    }

    // Missing instances, or an address that is not one, are refused with the flag to fix.
    let out = generate(&["--auth", "127.0.0.1:1", "--ingest", "127.0.0.1:2", "--query", "127.0.0.1:3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--blob"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = generate(&upstream_args("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4 }"));
    assert!(!out.status.success(), "an address that would break the file is refused");
}

/// Walks Caddy's JSON routes, keeping the path matchers on the way to each `reverse_proxy` handler.
fn collect(node: &Value, paths: &mut Vec<String>, found: &mut Vec<(Vec<String>, Value)>) {
    let Some(routes) = node["routes"].as_array() else { return };
    for route in routes {
        let matched: Vec<String> = route["match"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["path"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        let depth = paths.len();
        paths.extend(matched);
        for handler in route["handle"].as_array().into_iter().flatten() {
            if handler["handler"] == "reverse_proxy" {
                found.push((paths.clone(), handler.clone()));
            } else {
                collect(handler, paths, found);
            }
        }
        paths.truncate(depth);
    }
}

/// A Caddy run for a test, under `timeout` so that it goes by itself whatever happens; stopped by PID.
struct Gateway {
    child: Option<Child>,
    url: String,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let out = generate(&[&["--listen", listen.as_str()][..], args].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, &out.stdout).unwrap();
        let child = Command::new("timeout")
            .args(["120"])
            .arg(caddy())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("caddy.log")).unwrap())
            .spawn()
            .unwrap();
        let gateway = Self { child: Some(child), url: format!("http://{listen}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(format!("{}/healthz", gateway.url)).await.is_err() {
            assert!(Instant::now() < deadline, "caddy did not answer within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `timeout` passes SIGTERM on to Caddy.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

/// Through a real Caddy: requests reach their role's instances, an instance that does not run is taken out (the
/// requests meant for its role go to the one that runs), a role with no instance running answers `503 unavailable`
/// with `Retry-After` (a request nobody took, which every client retries), and unknown paths `404 not_found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_routes_through_caddy_and_skips_instances_that_do_not_answer() {
    let app = TestServer::start(engine::postgres()).await;
    let live = app.addr.to_string();
    let dead =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let two = format!("{dead},{live}");
    let gateway = Gateway::start(&upstream_args(&live, &two, &two, &dead)).await;
    // The same deployment, spoken to through the gateway.
    let through = TestServer { url: gateway.url.clone(), ..app };

    let (status, body) = through.get("/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    // Whatever the path holds, the answer is JSON.
    for path in ["/api/sync/nothing-here", "/api/sync/%22%7D%5C"] {
        let (status, body) = through.get(path, None).await;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    let (status, body) = through.get("/readyz", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "an instance's readiness is its own");
    let (status, doc) = through.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/api/sync/push"].is_object());

    // Sign-up, pushes and reads, each many times: never a request lost to the dead instance of ingest or query.
    let user = through.user().await;
    let mut cursor = 0;
    for n in 0..20 {
        let (status, body) = through.push(&user, &entries(2)).await;
        assert_eq!(status, StatusCode::OK, "push {n}: {body}");
        cursor = body["cursor"].as_u64().unwrap();
        let (status, body) = through.get("/api/sync/status", Some(&user.token)).await;
        assert_eq!((status, &body["cursor"]), (StatusCode::OK, &json!(cursor)), "status {n}: {body}");
    }
    assert_eq!(through.pull_all(&user.token, 0).await.len() as u64, cursor);

    // Blob has no instance running: 503 unavailable with Retry-After, for a request with a body too.
    let resp = through
        .http
        .post(format!("{}/api/sync/blobs/upload", gateway.url))
        .bearer_auth(&user.token)
        .json(&json!({"hash": "00", "size": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some("1"));
    assert_eq!(code(&resp.json().await.unwrap()), "unavailable");
}
