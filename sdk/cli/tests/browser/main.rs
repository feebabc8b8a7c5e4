//! The server's pages in a real browser: Debian's Chromium, driven headless by playwright-core.
//!
//! - Here, `synckit login --browser`: the browser (`driver.mjs`, which the CLI starts as `$BROWSER`) signs in on the
//!   server's page with the keyboard, the CLI gets the code at its loopback callback, exchanges it, unlocks
//!   encryption with the password and registers the device; then what it pushes reaches another device. Every
//!   request the browser sent is checked: none carries the password. The page's worker also derives the shared
//!   login-key vectors, which the SDK's own test checks in Rust.
//! - [`console`]: the developer console, from sign-up to the usage charts (`console.mjs`).
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules` (`ops/ensure-chromium`, which `ops/test` runs); fails,
//! never skips, without them.

mod console;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use synckit_testkit::{TestServer, email, engine};

const PASSWORD: &str = "typed in the browser, ünïcode and all";

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What one run of `synckit` did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "synckit failed: {self:#?}");
        self
    }
}

/// `synckit ARGS` in profile `profile` under `home`, with `vars` set on top of the usual ones.
async fn synckit(server: &TestServer, home: &Path, profile: &str, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_synckit"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("SYNCKIT_SERVER", &server.url)
        .env("SYNCKIT_API_KEY", &server.api_key)
        .env("SYNCKIT_PROFILE", home.join("profiles").join(profile))
        .env("SYNCKIT_PASSWORD", PASSWORD)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("synckit runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The driver's report, once it has written it (it closes the browser after the CLI's callback page).
async fn report(out: &Path) -> Value {
    let file = out.join("driver.json");
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(report) = serde_json::from_str(&text)
        {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser driver wrote no report within a minute");
}

/// `text` as a form or query would carry it.
fn form_encoded(text: &str) -> String {
    url_encoded(text).replace("%20", "+")
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_in_the_browser_signs_in_and_syncs_without_the_password_reaching_the_server() {
    let driver = here().join("driver.mjs");
    assert!(
        Path::new("/usr/bin/chromium").is_file() && here().join("node_modules/playwright-core").is_dir(),
        "Chromium or playwright-core is missing: run ops/ensure-chromium (ops/test does)"
    );
    let vectors_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../synckit/tests/data/login-key-vectors.json");
    let server = TestServer::start(engine::embedded()).await;
    let registered = ["http://127.0.0.1/callback".to_owned()];
    server.engines.accounts.set_redirect_uris(server.app_id, &registered).await.unwrap().expect("the test app");
    let (home, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let home = home.path();

    // The account is made by the CLI, with the SDK's Argon2id in Rust: signing in on the page works only if the
    // browser derives the same key.
    let email = email();
    let signup = synckit(&server, home, "laptop", &["signup", &email], &[]).await.ok();
    let user_id = serde_json::from_str::<Value>(signup.stdout.trim()).unwrap()["user_id"].clone();

    let browser = format!("node {}", driver.display());
    let vars = [
        ("BROWSER", browser.as_str()),
        ("SIGNIN_EMAIL", email.as_str()),
        ("SIGNIN_PASSWORD", PASSWORD),
        ("DRIVER_OUT", out.path().to_str().unwrap()),
        ("LOGIN_VECTORS", vectors_file.to_str().unwrap()),
    ];
    let login = synckit(&server, home, "laptop", &["login", "--browser", "--device", "laptop"], &vars).await;
    let report = report(out.path()).await;
    assert_eq!(report.get("error"), None, "the browser driver failed: {report:#}\n{login:#?}");
    let login = login.ok();
    // The URL is printed for a remote shell too.
    assert!(login.stderr.contains(&format!("{}/oauth/authorize?response_type=code", server.url)), "{login:#?}");
    let signed_in: Value = serde_json::from_str(login.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {login:#?}"));
    assert_eq!((&signed_in["user_id"], &signed_in["app_id"]), (&user_id, &server.app_id.to_string().into()));
    assert!(signed_in["device_id"].is_string(), "{signed_in}");

    // What the browser did: no console errors, the progress indicator while deriving, back at the CLI's callback,
    // which says it worked.
    assert_eq!(report["consoleErrors"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["progressShown"], true, "{report:#}");
    let final_url = report["finalUrl"].as_str().unwrap();
    assert!(final_url.starts_with("http://127.0.0.1:") && final_url.contains("/callback?code="), "{final_url}");
    assert!(report["finalText"].as_str().unwrap().to_lowercase().contains("signed in"), "{report:#}");

    // The page's worker derived the shared vectors as the SDK does.
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(&vectors_file).unwrap()).unwrap();
    let expected: Vec<&Value> = vectors.as_array().unwrap().iter().map(|v| &v["login_key"]).collect();
    let derived: Vec<&Value> = report["derived"].as_array().unwrap().iter().collect();
    assert_eq!(derived, expected, "the browser's login keys");

    // Every request the browser sent: none carries the password, in any encoding; the form's post carries the
    // login key instead.
    let requests = report["requests"].as_array().unwrap();
    for request in requests {
        let seen = format!("{} {}", request["url"], request["body"]);
        for form in [PASSWORD.to_owned(), form_encoded(PASSWORD), url_encoded(PASSWORD)] {
            assert!(!seen.contains(&form), "the password left the browser: {request:#}");
        }
    }
    let posts: Vec<&str> = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["url"].as_str().unwrap().ends_with("/oauth/authorize"))
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    assert_eq!(posts.len(), 1, "one sign-in: {requests:#?}");
    assert!(posts[0].contains("login_key=") && posts[0].contains(&format!("email={}", form_encoded(&email))));
    let prelogins = requests.iter().filter(|r| r["url"].as_str().unwrap().ends_with("/api/accounts/prelogin"));
    assert_eq!(prelogins.count(), 1, "{requests:#?}");

    // Signed in and unlocked: what this profile pushes, another device pulls.
    synckit(&server, home, "laptop", &["push", "notes", "n1", r#"{"title":"from the browser sign-in"}"#], &[])
        .await
        .ok();
    synckit(&server, home, "desktop", &["login", &email, "--device", "desktop"], &[]).await.ok();
    let pulled = synckit(&server, home, "desktop", &["pull"], &[]).await.ok();
    let change: Value = serde_json::from_str(pulled.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {pulled:#?}"));
    assert_eq!((&change["row_id"], &change["data"]["title"]), (&"n1".into(), &"from the browser sign-in".into()));

    // The screenshots, for docs/ when the page changes.
    for shot in ["signin-desktop.png", "signin-phone.png"] {
        assert!(std::fs::metadata(out.path().join(shot)).unwrap().len() > 1000, "{shot}");
    }
    if let Some(dir) = std::env::var_os("SYNCKIT_SCREENSHOTS") {
        for shot in ["signin-desktop.png", "signin-phone.png"] {
            std::fs::copy(out.path().join(shot), Path::new(&dir).join(shot)).unwrap();
        }
    }
}
