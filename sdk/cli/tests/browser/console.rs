//! The developer console (`GET /console`) in Debian's Chromium, driven headless by playwright-core (`console.mjs`):
//! an app developer signs up on the page, creates an app and sees its API key once, edits its redirect URIs, rotates
//! the key, prices plans live as they type, sets one and schedules a lower one, and reads the usage of the app once
//! its users have synced. Each step is checked twice: by what the page showed, and by what the server then holds.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use synckit_server::admin;
use synckit_testkit::{TestServer, email, engine, random_bytes};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

use crate::{form_encoded, here, url_encoded};

const PASSWORD: &str = "the console's password, ünïcode too";

/// The ciphertext each pushed entry carries.
const ENTRY_BYTES: usize = 2_000;

/// The operator's trial plan once the users have synced: 10 kB of storage, 50 kB of transfer a month.
const TRIAL_GB: &str = "0.00001";

fn step<'a>(report: &'a Value, name: &str) -> &'a str {
    report["steps"][name].as_str().unwrap_or_else(|| panic!("the driver saw no {name}: {report:#}"))
}

/// Whether `key` works: an app signs a user in with it.
async fn key_works(server: &TestServer, key: &str) -> bool {
    let user = server.user_in_app(&server.api_key).await;
    let body = json!({"email": user.email, "login_key": synckit_testkit::b64(&user.login_key), "api_key": key});
    let (status, answer) = server.post("/api/sync/auth", None, body).await;
    match status.as_u16() {
        200 => true,
        401 if answer["error"]["code"] == "invalid_api_key" => false,
        _ => panic!("{status}: {answer}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_manages_an_app_its_keys_plan_and_usage_in_the_browser() {
    assert!(
        Path::new("/usr/bin/chromium").is_file() && here().join("node_modules/playwright-core").is_dir(),
        "Chromium or playwright-core is missing: run ops/ensure-chromium (ops/test does)"
    );
    let server = TestServer::start(engine::embedded()).await;
    let out = tempfile::tempdir().unwrap();
    let email = email();

    let mut driver = tokio::process::Command::new("node")
        .arg(here().join("console.mjs"))
        .env("CONSOLE_URL", &server.url)
        .env("CONSOLE_EMAIL", &email)
        .env("CONSOLE_PASSWORD", PASSWORD)
        .env("DRIVER_OUT", out.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut said = BufReader::new(driver.stdout.take().unwrap()).lines();
    let mut stdin = driver.stdin.take().unwrap();

    // The driver tells the keys it read off the page once the plan is set; then the app's users sync, and the
    // operator puts the app on a trial plan small enough for what they stored to show on the charts.
    let line = tokio::time::timeout(Duration::from_secs(180), said.next_line()).await.expect("the driver's keys");
    let mut synced = Vec::new();
    if let Some(line) = line.unwrap() {
        let keys: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let (created, rotated) = (keys["created"].as_str().unwrap(), keys["rotated"].as_str().unwrap());
        // The key shown at creation worked until the rotation; the one shown after it works now.
        assert!(created.starts_with("sk_") && rotated.starts_with("sk_") && created != rotated, "{keys}");
        assert!(!key_works(&server, created).await, "the key before the rotation still works");
        assert!(key_works(&server, rotated).await, "the rotated key does not work");
        // The plans the page set: 1 GB in force, 0.5 GB from next month.
        let app_id: Uuid = keys["app_id"].as_str().unwrap().parse().unwrap();
        let plan = server.engines.accounts.app_plan(app_id).await.unwrap().expect("a plan");
        assert_eq!((plan.storage_bytes, plan.burst), (1_000_000_000, 5));
        assert_eq!(plan.next.map(|next| (next.storage_bytes, next.burst)), Some((500_000_000, 5)));
        for n in [3, 1] {
            let user = server.user_in_app(rotated).await;
            let payloads: Vec<(Uuid, Vec<u8>)> = (0..n).map(|_| (Uuid::now_v7(), random_bytes(ENTRY_BYTES))).collect();
            let (status, answer) = server.push(&user, &payloads).await;
            assert_eq!(status.as_u16(), 200, "{answer}");
            synced.push((user.user_id, n * ENTRY_BYTES));
        }
        admin::set_plan(&*server.engines.accounts, app_id, TRIAL_GB, None).await.unwrap();
        stdin.write_all(b"go\n").await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(120), driver.wait()).await.expect("the driver ends");
    assert!(status.unwrap().success());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("console.json")).unwrap())
        .expect("the driver's report");
    assert_eq!(report.get("error"), None, "the console driver failed: {report:#}");
    assert_eq!(report["consoleErrors"], json!([]), "{report:#}");

    // Signed up and in, with the key derived in the browser while the page said so.
    let policy = step(&report, "policy");
    for part in ["default-src 'none'", "script-src 'self';", "frame-ancestors 'none'", "form-action 'none'"] {
        assert!(policy.contains(part), "{policy}");
    }
    assert_eq!(report["steps"]["progressShown"], true, "{report:#}");
    assert_eq!(step(&report, "signedInAs"), email);
    let account = server.engines.accounts.user_by_email(&email).await.unwrap().expect("the account signed up");

    // The app, created by the account, its key shown once: on the page after creating it, and nowhere after.
    assert!(step(&report, "createWithoutName").contains("Give the app a name"), "{report:#}");
    let app_id: Uuid = step(&report, "appId").parse().unwrap();
    let created = step(&report, "createdKey");
    let rotated = step(&report, "rotatedKey");
    assert!(step(&report, "createdKeyPanel").contains("shown this once"), "{report:#}");
    assert!(step(&report, "createdKeyPanel").contains(created));
    for later in ["afterSavedKey", "afterReload"] {
        let text = step(&report, later);
        assert!(!text.contains(created) && !text.contains("sk_"), "{later}: the key is still shown: {text}");
    }
    assert_eq!(report["steps"]["appsListed"], json!(["Notes"]), "listed after a reload, still signed in");

    // Redirect URIs: the refused list kept as typed with the reason; the saved one on the server.
    assert!(step(&report, "urisRefused").contains("http://example.com/callback"), "{report:#}");
    assert_eq!(step(&report, "urisKept"), "http://127.0.0.1/callback\nhttp://example.com/callback");
    assert!(step(&report, "sessionEnded").contains("Sign in again"), "{report:#}");
    assert_eq!(step(&report, "urisAfterSignIn"), "http://127.0.0.1/callback\n\ncom.example.notes:/oauth\n");
    assert_eq!(step(&report, "urisSaved"), "Saved: 2 redirect URIs.");
    assert_eq!(step(&report, "urisShown"), "http://127.0.0.1/callback\ncom.example.notes:/oauth");
    let app = server.engines.accounts.app(app_id).await.unwrap().expect("the app");
    assert_eq!((app.name.as_str(), app.owner_id), ("Notes", Some(account.id)));
    assert_eq!(app.redirect_uris, ["http://127.0.0.1/callback", "com.example.notes:/oauth"]);

    // Rotation asked first, and showed a new key (checked against the server above).
    assert!(step(&report, "rotateAsks").contains("stops working at once"), "{report:#}");
    assert!(rotated.starts_with("sk_") && rotated != created);

    // Live quotes, as typed.
    assert!(step(&report, "quote1").contains("$0.30 a month"), "{report:#}");
    assert!(step(&report, "quote1").contains("up to 5 GB transferred a month"), "{report:#}");
    assert!(step(&report, "quote50").contains("$15.00 a month"), "{report:#}");
    assert!(step(&report, "quoteBad").contains("decimal number"), "{report:#}");
    assert_eq!(step(&report, "quoteBadKept"), "1,5", "a bad value stays for the developer to fix");
    assert_eq!(report["steps"]["burstHiddenInSimple"], true, "Simple mode fixes the burst");
    assert!(step(&report, "quoteBuilder").contains("$7.50 a month"), "10 GB at 20x: {report:#}");
    assert!(step(&report, "quoteBurstTooHigh").contains("1 to 20"), "{report:#}");

    // The plan: 1 GB in force at once, 0.5 GB from next month, as the page said (and the server held, above).
    assert!(step(&report, "planSet").contains("$0.30 a month"), "{report:#}");
    assert!(step(&report, "planCurrent").contains("1 GB stored, up to 5 GB transferred"), "{report:#}");
    assert!(step(&report, "quoteLower").contains("Lowers a limit"), "{report:#}");
    assert!(step(&report, "planNext").contains("500 MB stored"), "{report:#}");
    assert!(step(&report, "planCurrentAfter").contains("1 GB stored"), "{report:#}");

    // Usage, under the operator's trial plan: 8 kB stored of 10 kB, the same transferred (each push's payloads) of
    // 50 kB, and the two users, the larger first, each with what they pushed.
    assert_eq!(synced.len(), 2, "the users synced");
    assert!(step(&report, "planAfterOperator").contains("10 kB stored, up to 50 kB transferred"), "{report:#}");
    let charts = &report["steps"]["charts"];
    assert_eq!(
        (&charts[0]["title"], &charts[0]["summary"], &charts[0]["limit"]),
        (&json!("Storage"), &json!("8 kB of 10 kB stored (80%)."), &json!("Limit 10 kB")),
        "{report:#}"
    );
    assert_eq!(
        (&charts[1]["title"], &charts[1]["summary"], &charts[1]["limit"]),
        (&json!("Transfer this period"), &json!("8 kB of 50 kB transferred (16%)."), &json!("Budget 50 kB")),
        "{report:#}"
    );
    assert_eq!(charts[0]["label"], "Storage: 8 kB of 10 kB stored (80%).", "what a screen reader says");
    for chart in charts.as_array().unwrap() {
        assert_eq!(chart["points"], report["steps"]["today"], "a point for each day of the period so far: {chart}");
    }
    let rows: Vec<Vec<String>> = synced
        .iter()
        .map(|(user, bytes)| {
            let kb = format!("{} kB", bytes / 1000);
            vec![user.to_string(), kb.clone(), kb]
        })
        .collect();
    assert_eq!(report["steps"]["users"], json!(rows), "{report:#}");

    // The second app, deleted once its name was typed.
    assert_eq!(report["steps"]["appsBeforeDelete"], json!(["Notes", "Scratch"]));
    assert!(step(&report, "deleteMistyped").contains("Type Scratch exactly"), "{report:#}");
    assert!(step(&report, "deleted").contains("Scratch is deleted"), "{report:#}");
    assert_eq!(report["steps"]["appsAfterDelete"], json!(["Notes"]));
    let owned = server.engines.accounts.apps(Some(account.id)).await.unwrap();
    assert_eq!(owned.iter().map(|a| a.id).collect::<Vec<_>>(), [app_id]);
    assert_eq!(report["steps"]["appsAfterSignIn"], json!(["Notes"]), "signed in again");

    // The token in the tab's session storage only, and gone after signing out.
    assert_eq!(report["steps"]["storageSignedIn"], json!({"local": [], "session": ["synckit.console.session"]}));
    assert_eq!(report["steps"]["storageSignedOut"], json!({"local": [], "session": []}));

    // Every request the browser sent: none carries the password, in any encoding; sign-up and the sign-ins sent
    // login keys.
    let requests = report["requests"].as_array().unwrap();
    for request in requests {
        let seen = format!("{} {}", request["url"], request["body"]);
        for form in [PASSWORD.to_owned(), form_encoded(PASSWORD), url_encoded(PASSWORD)] {
            assert!(!seen.contains(&form), "the password left the browser: {request:#}");
        }
    }
    let posts_to = |path: &str| {
        requests
            .iter()
            .filter(|r| r["method"] == "POST" && r["url"].as_str().unwrap().ends_with(path))
            .map(|r| serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap())
            .collect::<Vec<_>>()
    };
    let sign_ins = posts_to("/api/accounts/console-auth");
    assert_eq!(sign_ins.len(), 3, "after sign-up, after the session ended, after signing out: {requests:#?}");
    assert!(sign_ins.iter().all(|s| s["email"] == email.as_str() && s["login_key"].is_string()), "{sign_ins:?}");
    assert_eq!(posts_to("/api/accounts/register").len(), 1);

    // The screenshots, for docs/ when the page changes.
    let shots = ["console-signin.png", "console-key.png", "console-desktop.png", "console-phone.png"];
    for shot in shots {
        assert!(std::fs::metadata(out.path().join(shot)).unwrap().len() > 1000, "{shot}");
    }
    if let Some(dir) = std::env::var_os("SYNCKIT_SCREENSHOTS") {
        for shot in shots {
            std::fs::copy(out.path().join(shot), Path::new(&dir).join(shot)).unwrap();
        }
    }
}
