//! The `synckit` binary as a user runs it: a real server in this process (the embedded default), the built binary
//! in a subprocess with a clean environment, and each profile directory playing one device.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use synckit_testkit::{FaultProxy, TestServer, TestUser, email, engine, random_bytes};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

struct TestEnv {
    server: TestServer,
    /// HOME for every run, and the parent of the profiles.
    home: tempfile::TempDir,
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

    /// Asserts the run failed with `code` and said `message` on stderr, and printed no result.
    fn fails(self, code: i32, message: &str) -> Self {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        assert!(self.stderr.contains(message), "expected {message:?} on stderr: {self:#?}");
        assert_eq!(self.stdout, "", "a failed run printed a result: {self:#?}");
        self
    }

    /// The one JSON object a command printed.
    fn json(&self) -> Value {
        let lines = self.lines();
        assert_eq!(lines.len(), 1, "expected one JSON object: {self:#?}");
        lines.into_iter().next().unwrap()
    }

    /// The JSON lines a command printed.
    fn lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
    }
}

async fn start() -> TestEnv {
    TestEnv { server: TestServer::start(engine::embedded()).await, home: tempfile::tempdir().unwrap() }
}

impl TestEnv {
    fn profile(&self, name: &str) -> PathBuf {
        self.home.path().join("profiles").join(name)
    }

    /// `synckit ARGS` in profile `profile`, with SYNCKIT_PASSWORD set to [`PASSWORD`].
    async fn synckit(&self, profile: &str, args: &[&str]) -> Run {
        self.synckit_with(profile, &[], args).await
    }

    /// `synckit ARGS` with variables set (`Some`) or removed (`None`) over the usual ones.
    async fn synckit_with(&self, profile: &str, vars: &[(&str, Option<&str>)], args: &[&str]) -> Run {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_synckit"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("SYNCKIT_SERVER", &self.server.url)
            .env("SYNCKIT_API_KEY", &self.server.api_key)
            .env("SYNCKIT_PROFILE", self.profile(profile))
            .env("SYNCKIT_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .args(args);
        for (name, value) in vars {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        // Blocking on the child in a worker thread keeps the runtime serving the server meanwhile.
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("synckit runs");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        let passwords = vars.iter().filter(|(name, _)| name.contains("PASSWORD")).filter_map(|(_, value)| *value);
        for password in passwords.chain([PASSWORD]) {
            assert!(!run.stdout.contains(password) && !run.stderr.contains(password), "a password leaked: {run:#?}");
        }
        run
    }

    async fn signup_and_login(&self, profile: &str, device: &str) -> (String, Value) {
        let email = email();
        self.synckit(profile, &["signup", &email]).await.ok();
        let login = self.synckit(profile, &["login", &email, "--device", device]).await.ok().json();
        (email, login)
    }
}

fn keys(object: &Value) -> BTreeSet<&str> {
    object.as_object().expect("an object").keys().map(String::as_str).collect()
}

/// A pulled change without its timestamp (set on the device that pushed it), after checking it has one.
fn without_timestamp(mut change: Value) -> Value {
    assert_eq!(keys(&change), BTreeSet::from(["table", "op", "row_id", "timestamp", "data"]), "{change}");
    let timestamp = change.as_object_mut().unwrap().remove("timestamp").unwrap();
    assert!(timestamp.as_i64().is_some_and(|t| t > 1_600_000_000_000), "a millisecond timestamp: {timestamp}");
    change
}

fn profile_file(dir: &Path) -> PathBuf {
    dir.join("profile.json")
}

/// The files in `<profile>/keys`: where the unlocked key lives.
fn key_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("keys")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_profiles_on_one_machine_sync_as_two_devices() {
    let t = start().await;
    let email = email();

    let signup = t.synckit("a", &["signup", &email]).await.ok().json();
    assert_eq!(keys(&signup), BTreeSet::from(["user_id"]));
    let a = t.synckit("a", &["login", &email, "--device", "laptop"]).await.ok().json();
    let b = t.synckit("b", &["login", &email, "--device", "desktop"]).await.ok().json();
    assert_eq!(keys(&a), BTreeSet::from(["user_id", "app_id", "device_id"]));
    assert_eq!(a["user_id"], signup["user_id"]);
    assert_eq!((&b["user_id"], &b["app_id"]), (&a["user_id"], &a["app_id"]));
    assert_ne!(a["device_id"], b["device_id"], "two profiles are two devices");

    // The profile holds a bearer token: only its owner reads it, and it holds no password.
    let saved = std::fs::read_to_string(profile_file(&t.profile("a"))).unwrap();
    assert!(!saved.contains(PASSWORD));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(profile_file(&t.profile("a"))).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let first = t.synckit("a", &["push", "notes", "n1", r#"{"title":"Hi","tags":["x"]}"#]).await.ok().json();
    let second = t.synckit("a", &["push", "notes", "n0", "--delete"]).await.ok().json();
    assert_eq!(keys(&first), BTreeSet::from(["change_id", "pushed", "pending"]));
    assert_eq!((&first["pushed"], &first["pending"]), (&json!(1), &json!(0)), "sent at once: {first}");
    assert_eq!((&second["pushed"], &second["pending"]), (&json!(1), &json!(0)), "sent at once: {second}");
    assert_ne!(first["change_id"], second["change_id"]);

    let pulled: Vec<Value> = t.synckit("b", &["pull"]).await.ok().lines().into_iter().map(without_timestamp).collect();
    assert_eq!(
        pulled,
        [
            json!({"table": "notes", "op": "update", "row_id": "n1", "data": {"title": "Hi", "tags": ["x"]}}),
            json!({"table": "notes", "op": "delete", "row_id": "n0", "data": null}),
        ]
    );
    assert_eq!(t.synckit("b", &["pull"]).await.ok().stdout, "", "the second pull resumes after the first");
    assert_eq!(t.synckit("a", &["pull"]).await.ok().stdout, "", "a device does not pull its own changes");

    t.synckit("b", &["push", "notes", "n2", "-42"]).await.ok();
    let pulled: Vec<Value> = t.synckit("a", &["pull"]).await.ok().lines().into_iter().map(without_timestamp).collect();
    assert_eq!(pulled, [json!({"table": "notes", "op": "update", "row_id": "n2", "data": -42})]);

    let status = t.synckit("a", &["status"]).await.ok().json();
    assert_eq!(status, json!({"change_count": 3, "cursor": 3, "pending": 0}));

    let devices = t.synckit("a", &["devices"]).await.ok().lines();
    assert_eq!(devices.len(), 2, "{devices:?}");
    for device in &devices {
        assert_eq!(keys(device), BTreeSet::from(["id", "name", "platform", "created_at"]));
        assert_eq!(device["platform"], std::env::consts::OS);
    }
    // Oldest first.
    let listed: Vec<(&Value, &Value)> = devices.iter().map(|d| (&d["id"], &d["name"])).collect();
    assert_eq!(listed, [(&a["device_id"], &json!("laptop")), (&b["device_id"], &json!("desktop"))]);

    let b_id = b["device_id"].as_str().unwrap();
    let deleted = t.synckit("a", &["devices", "delete", b_id]).await.ok();
    assert_eq!(deleted.stdout, "");
    let devices = t.synckit("a", &["devices"]).await.ok().lines();
    assert_eq!(devices.iter().map(|d| &d["id"]).collect::<Vec<_>>(), [&a["device_id"]]);
    t.synckit("a", &["devices", "delete", b_id]).await.fails(1, "this account has no device");
    t.synckit("b", &["push", "notes", "n3", "{}"]).await.fails(1, &format!("was deleted: run synckit login {email}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_while_offline_waits_in_the_outbox_and_sync_delivers_it_once() {
    let t = start().await;
    // Profile a reaches the server through a proxy that can go down; profile b directly.
    let network = FaultProxy::start(t.server.addr).await;
    let via_network = [("SYNCKIT_SERVER", Some(network.url.as_str()))];
    let email = email();
    t.synckit_with("a", &via_network, &["signup", &email]).await.ok();
    t.synckit_with("a", &via_network, &["login", &email, "--device", "laptop"]).await.ok();
    t.synckit("b", &["login", &email, "--device", "desktop"]).await.ok();

    network.set_up(false);
    let queued = t.synckit_with("a", &via_network, &["push", "notes", "n1", r#"{"n":1}"#]).await.ok();
    assert!(queued.stderr.contains("waits in this profile's outbox, which holds 1 change"), "{queued:#?}");
    assert_eq!((&queued.json()["pushed"], &queued.json()["pending"]), (&json!(0), &json!(1)));
    t.synckit_with("a", &via_network, &["push", "notes", "n0", "--delete"]).await.ok();
    t.synckit_with("a", &via_network, &["status"])
        .await
        .fails(1, "the server cannot be reached; 2 changes wait in the outbox");
    // Sync fails offline, and loses nothing.
    let offline = t.synckit_with("a", &via_network, &["sync"]).await;
    assert_eq!((offline.code, offline.stdout.as_str()), (Some(1), ""), "{offline:#?}");

    network.set_up(true);
    let synced = t.synckit_with("a", &via_network, &["sync"]).await.ok();
    assert!(synced.stderr.contains("pushed 2 changes, pulled 0 changes, 0 pending"), "{synced:#?}");
    let pulled: Vec<Value> = t.synckit("b", &["pull"]).await.ok().lines().into_iter().map(without_timestamp).collect();
    assert_eq!(
        pulled,
        [
            json!({"table": "notes", "op": "update", "row_id": "n1", "data": {"n": 1}}),
            json!({"table": "notes", "op": "delete", "row_id": "n0", "data": null}),
        ],
        "delivered once, in order"
    );
    let again = t.synckit_with("a", &via_network, &["sync"]).await.ok();
    assert!(again.stderr.contains("pushed 0 changes"), "{again:#?}");
    let status = t.synckit_with("a", &via_network, &["status"]).await.ok().json();
    assert_eq!(status, json!({"change_count": 2, "cursor": 2, "pending": 0}));

    // What b pushes, a's sync prints.
    t.synckit("b", &["push", "notes", "n2", "[2]"]).await.ok();
    let synced = t.synckit_with("a", &via_network, &["sync"]).await.ok();
    let printed: Vec<Value> = synced.lines().into_iter().map(without_timestamp).collect();
    assert_eq!(printed, [json!({"table": "notes", "op": "update", "row_id": "n2", "data": [2]})]);
    assert!(synced.stderr.contains("pushed 0 changes, pulled 1 change, 0 pending"), "{synced:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_on_login_fails_clearly_and_leaves_no_session() {
    let t = start().await;
    let email = email();
    t.synckit("a", &["signup", &email]).await.ok();

    let wrong = [("SYNCKIT_PASSWORD", Some("not the password"))];
    t.synckit_with("a", &wrong, &["login", &email]).await.fails(1, "synckit: wrong password");
    assert!(!profile_file(&t.profile("a")).exists());
    assert_eq!(key_files(&t.profile("a")), 0);
    t.synckit("a", &["status"]).await.fails(1, "not logged in: run synckit login EMAIL");

    // No account at all reads the same, so no one can probe which emails have one.
    t.synckit("a", &["login", "nobody@example.com"]).await.fails(1, "wrong password");
    t.synckit("a", &["login", &email]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_changes_the_password_and_the_old_one_stops_working() {
    let t = start().await;
    let (email, _) = t.signup_and_login("a", "laptop").await;
    t.synckit("b", &["login", &email, "--device", "desktop"]).await.ok();
    t.synckit("a", &["push", "notes", "n1", r#"{"title":"before"}"#]).await.ok();

    let new = "a brand new passphrase";
    let wrong_current = [("SYNCKIT_PASSWORD", Some("not the password")), ("SYNCKIT_NEW_PASSWORD", Some(new))];
    t.synckit_with("a", &wrong_current, &["passwd"]).await.fails(1, "wrong password");

    let change = [("SYNCKIT_NEW_PASSWORD", Some(new))];
    let changed = t.synckit_with("a", &change, &["passwd"]).await.ok();
    assert_eq!(changed.stdout, "");
    // The profile that changed it stays logged in; the other one must log in again, and is told how.
    t.synckit("a", &["status"]).await.ok();
    t.synckit("b", &["status"]).await.fails(1, &format!("run synckit login {email}"));

    t.synckit("c", &["login", &email]).await.fails(1, "wrong password");
    assert!(!profile_file(&t.profile("c")).exists());
    let with_new = [("SYNCKIT_PASSWORD", Some(new))];
    t.synckit_with("c", &with_new, &["login", &email, "--device", "tablet"]).await.ok();
    // The key still opens under the new password: what was pushed before reads back.
    let pulled: Vec<Value> = t.synckit("c", &["pull"]).await.ok().lines().into_iter().map(without_timestamp).collect();
    assert_eq!(pulled, [json!({"table": "notes", "op": "update", "row_id": "n1", "data": {"title": "before"}})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_recovered_with_the_recovery_key() {
    let t = start().await;
    let (email, _) = t.signup_and_login("a", "laptop").await;
    t.synckit("a", &["push", "notes", "n1", r#"{"title":"before"}"#]).await.ok();

    let wrong = [("SYNCKIT_PASSWORD", Some("not the password"))];
    t.synckit_with("a", &wrong, &["recovery-key"]).await.fails(1, "wrong password");
    let made = t.synckit("a", &["recovery-key"]).await.ok();
    assert_eq!(keys(&made.json()), BTreeSet::from(["recovery_key"]));
    let key = made.json()["recovery_key"].as_str().unwrap().to_owned();
    assert!(made.stderr.contains("store it safely"), "{made:#?}");

    // The password is forgotten: a new profile recovers. A typo, or another key, is refused and logs nothing in.
    let new = "a brand new passphrase";
    let typo = format!("{}{}", &key[..key.len() - 1], if key.ends_with('X') { 'Y' } else { 'X' });
    for (given, says) in
        [(typo, "checksum"), (synckit::RecoveryKey::generate().to_string(), "this is not the recovery key of")]
    {
        let run = t.synckit_with("b", &recovering(&given, new), &["recover", &email, "--device", "desktop"]).await;
        run.fails(1, says);
        assert!(!profile_file(&t.profile("b")).exists());
    }
    let recovered = t.synckit_with("b", &recovering(&key, new), &["recover", &email, "--device", "desktop"]).await.ok();
    let out = recovered.json();
    assert_eq!(keys(&out), BTreeSet::from(["user_id", "app_id", "device_id", "recovery_key"]));
    let next = out["recovery_key"].as_str().unwrap().to_owned();
    assert_ne!(next, key);
    assert!(next.parse::<synckit::RecoveryKey>().is_ok(), "{next}");
    assert!(recovered.stderr.contains("store it safely"), "{recovered:#?}");
    // The recovering profile is a logged-in device and reads what was pushed before.
    let pulled: Vec<Value> = t.synckit("b", &["pull"]).await.ok().lines().into_iter().map(without_timestamp).collect();
    assert_eq!(pulled, [json!({"table": "notes", "op": "update", "row_id": "n1", "data": {"title": "before"}})]);

    // The other profile must log in again; the old password is refused and the new one works.
    t.synckit("a", &["status"]).await.fails(1, &format!("run synckit login {email}"));
    t.synckit("c", &["login", &email]).await.fails(1, "wrong password");
    let with_new = [("SYNCKIT_PASSWORD", Some(new))];
    t.synckit_with("c", &with_new, &["login", &email, "--device", "tablet"]).await.ok();
    // The recovery key used is spent; the one printed works.
    t.synckit_with("d", &recovering(&key, "another one"), &["recover", &email])
        .await
        .fails(1, "not the recovery key of");
    t.synckit_with("d", &recovering(&next, "another one"), &["recover", &email, "--device", "phone"]).await.ok();
}

/// The variables `synckit recover` reads: the recovery key and the new password (and no current password).
fn recovering<'a>(key: &'a str, new: &'a str) -> [(&'static str, Option<&'a str>); 3] {
    [("SYNCKIT_RECOVERY_KEY", Some(key)), ("SYNCKIT_NEW_PASSWORD", Some(new)), ("SYNCKIT_PASSWORD", None)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_forgets_the_session_and_the_key() {
    let t = start().await;
    let (email, _) = t.signup_and_login("a", "laptop").await;
    assert!(profile_file(&t.profile("a")).exists());
    assert_eq!(key_files(&t.profile("a")), 1);

    let out = t.synckit("a", &["logout"]).await.ok();
    assert_eq!(out.stdout, "");
    assert!(!profile_file(&t.profile("a")).exists());
    assert_eq!(key_files(&t.profile("a")), 0, "the unlocked key stays behind");
    t.synckit("a", &["status"]).await.fails(1, "synckit: not logged in: run synckit login EMAIL");
    t.synckit("a", &["logout"]).await.fails(1, "not logged in");

    t.synckit("a", &["login", &email, "--device", "laptop"]).await.ok();
    t.synckit("a", &["status"]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_under_one_device_name_are_told_they_share_a_device() {
    let t = start().await;
    let (email, a) = t.signup_and_login("a", "shared").await;
    let b = t.synckit("b", &["login", &email, "--device", "shared"]).await.ok();
    assert_eq!(b.json()["device_id"], a["device_id"]);
    assert!(b.stderr.contains("using the existing device shared"), "{b:#?}");
    assert!(b.stderr.contains("--device NAME"), "{b:#?}");

    // Without --device the name is the host's, the same in every profile.
    let c = t.synckit("c", &["login", &email]).await.ok();
    let d = t.synckit("d", &["login", &email]).await.ok();
    assert!(!c.stderr.contains("existing device"), "{c:#?}");
    assert!(d.stderr.contains("existing device"), "{d:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_messages() {
    let t = start().await;
    // Usage errors: exit 2, before anything else.
    t.synckit("a", &["push", "notes", "n1"]).await.fails(2, "push needs the row's JSON, or --delete");
    t.synckit("a", &["push", "notes", "n1", "{title: 1}"]).await.fails(2, "not valid JSON");
    t.synckit("a", &["push", "notes", "n1", "{}", "--delete"]).await.fails(2, "cannot be used with '--delete'");
    t.synckit("a", &["devices", "delete", "laptop"]).await.fails(2, "not a device id");

    // Commands that need a login, without one.
    for args in [&["pull"][..], &["push", "notes", "n1", "--delete"], &["devices"], &["passwd"]] {
        t.synckit("a", args).await.fails(1, "not logged in: run synckit login EMAIL");
    }

    let email = email();
    t.synckit("a", &["signup", &email]).await.ok();
    t.synckit("a", &["signup", &email]).await.fails(1, "an account with this email exists");
    t.synckit_with("a", &[("SYNCKIT_API_KEY", None)], &["login", &email]).await.fails(1, "SYNCKIT_API_KEY");
    t.synckit_with("a", &[("SYNCKIT_API_KEY", Some("sk_wrong"))], &["login", &email])
        .await
        .fails(1, "the API key does not belong to any app");
    t.synckit("a", &["login", &email, "--device", "laptop"]).await.ok();
    let elsewhere = [("SYNCKIT_SERVER", Some("http://127.0.0.1:9"))];
    t.synckit_with("a", &elsewhere, &["status"]).await.fails(1, "this profile is logged in to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_changes_as_other_devices_push_them() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let env = start().await;
    let (email, _) = env.signup_and_login("a", "laptop").await;
    env.synckit("b", &["login", &email, "--device", "phone"]).await.ok();
    env.synckit("a", &["push", "notes", "before", r#"{"n":1}"#]).await.ok();

    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_synckit"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.home.path())
        .env("SYNCKIT_PROFILE", env.profile("b"))
        .env("SYNCKIT_PASSWORD", PASSWORD)
        .arg("watch")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // A guard against hanging, not a performance bound: the lines come as soon as they are pulled.
    let mut next_line = async || {
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line()).await;
        serde_json::from_str::<Value>(&line.expect("a line in time").unwrap().expect("watch is running")).unwrap()
    };
    // First what was there already, then what is pushed while it watches.
    assert_eq!(next_line().await["row_id"], "before");
    env.synckit("a", &["push", "notes", "live", r#"{"n":2}"#]).await.ok();
    let live = next_line().await;
    assert_eq!(without_timestamp(live), json!({"table": "notes", "op": "update", "row_id": "live", "data": {"n": 2}}));
    // Ctrl-C stops it cleanly, after the page it was on is saved.
    let pid = watch.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), watch.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");

    // The cursor was saved as it went: a pull now has nothing new.
    assert_eq!(env.synckit("b", &["pull"]).await.ok().stdout, "");
}

/// The logged-in device of a profile, as the testkit's raw requests take it.
fn device_of(env: &TestEnv, profile: &str) -> TestUser {
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(profile_file(&env.profile(profile))).unwrap()).unwrap();
    let uuid = |v: &Value| v.as_str().unwrap().parse::<Uuid>().unwrap();
    let token = saved["session"]["token"].as_str().unwrap().to_owned();
    TestUser {
        email: saved["session"]["email"].as_str().unwrap().to_owned(),
        login_key: Vec::new(),
        // A profile keeps only its device's token, which also does all a sign-in token may.
        sign_in_token: token.clone(),
        token,
        user_id: uuid(&saved["session"]["user_id"]),
        app_id: uuid(&saved["session"]["app_id"]),
        device_id: uuid(&saved["device_id"]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_prints_what_it_can_read_and_lists_what_it_skipped_on_stderr() {
    let env = start().await;
    let (email, _) = env.signup_and_login("a", "laptop").await;
    env.synckit("b", &["login", &email, "--device", "phone"]).await.ok();
    env.synckit("rogue", &["login", &email, "--device", "rogue"]).await.ok();
    env.synckit("a", &["push", "notes", "n1", r#"{"n":1}"#]).await.ok();
    // A faulty device of the account pushes bytes that are not ciphertext under its key, straight over HTTP.
    let rogue = device_of(&env, "rogue");
    let forged = Uuid::now_v7();
    let (status, body) = env.server.push(&rogue, &[(forged, random_bytes(64))]).await;
    assert!(status.is_success(), "{status}: {body}");
    env.synckit("a", &["push", "notes", "n2", r#"{"n":2}"#]).await.ok();

    let run = env.synckit("b", &["pull"]).await;
    assert_eq!(run.code, Some(3), "a pull that skipped an entry says so in its status: {run:#?}");
    let rows: Vec<Value> = run.lines().into_iter().map(|change| change["row_id"].clone()).collect();
    assert_eq!(rows, ["n1", "n2"], "every change it can read is printed: {run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:#?}");
    assert_eq!(
        lines[0],
        format!(
            "synckit: entry 2 (change {forged}, from device {}) skipped: it does not decrypt: altered, moved from \
             another entry, or sealed under another key",
            rogue.device_id
        )
    );
    assert!(lines[1].starts_with("synckit: 1 entry could not be read and was skipped (listed above)"), "{run:#?}");

    // The cursor moved past it: the next pull neither prints nor reports anything, and succeeds.
    let again = env.synckit("b", &["pull"]).await.ok();
    assert_eq!((again.stdout.as_str(), again.stderr.as_str()), ("", ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_go_up_from_one_profile_and_come_down_on_another() {
    let env = start().await;
    let (email, _) = env.signup_and_login("laptop", "laptop").await;
    env.synckit("phone", &["login", &email, "--device", "phone"]).await.ok();

    let dir = env.home.path();
    let original: Vec<u8> = (0..300_001u32).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(dir.join("song.flac"), &original).unwrap();
    let put = env.synckit("laptop", &["blob", "put", dir.join("song.flac").to_str().unwrap()]).await.ok().json();
    let id = put["id"].as_str().unwrap().to_owned();
    assert_eq!((id.len(), &put["size"], &put["already_existed"]), (64, &json!(300_001), &json!(false)));
    // No progress bar when stderr is not a terminal.
    let again = env.synckit("laptop", &["blob", "put", dir.join("song.flac").to_str().unwrap()]).await.ok();
    assert_eq!(again.json()["already_existed"], true);
    assert_eq!(again.stderr, "");

    let copy = dir.join("copy.flac");
    let got = env.synckit("phone", &["blob", "get", &id, copy.to_str().unwrap()]).await.ok().json();
    assert_eq!(got["size"], 300_001);
    assert!(std::fs::read(&copy).unwrap() == original, "the download is the file");

    env.synckit("phone", &["blob", "get", "not-an-id", "x"]).await.fails(1, "not a blob id");
    env.synckit("phone", &["blob", "get", &"0".repeat(64), "x"]).await.fails(1, "blob");
    assert!(!Path::new("x").exists() && !dir.join("x").exists());
    env.synckit("laptop", &["blob", "put", dir.join("missing").to_str().unwrap()]).await.fails(1, "missing");

    // Deleted on one device, gone on the other.
    let rm = env.synckit("laptop", &["blob", "rm", &id]).await.ok().json();
    assert_eq!(rm, json!({"id": id, "deleted": true}));
    env.synckit("phone", &["blob", "get", &id, copy.to_str().unwrap()]).await.fails(1, "blob");
    env.synckit("laptop", &["blob", "rm", &id]).await.fails(1, "blob");
    env.synckit("laptop", &["blob", "rm", "not-an-id"]).await.fails(1, "not a blob id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_takes_an_email_or_the_browser() {
    let t = start().await;
    t.synckit("a", &["login"]).await.fails(2, "login needs the account's EMAIL, or --browser");
    t.synckit("a", &["login", "ada@example.com", "--browser"]).await.fails(2, "cannot be used with");
}

/// `login --browser` up to the browser's return: the server's half of the flow (its sign-in page and token
/// endpoint) is tested end to end with the server. Here the browser comes back with the server's refusal.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_browser_opens_it_and_reports_what_it_brings_back() {
    use std::os::unix::fs::PermissionsExt;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let t = start().await;
    // A stand-in browser that writes down the URL it was asked to open.
    let opened = t.home.path().join("opened");
    let browser = t.home.path().join("browser.sh");
    std::fs::write(&browser, format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display())).unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut login = tokio::process::Command::new(env!("CARGO_BIN_EXE_synckit"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", t.home.path())
        .env("SYNCKIT_SERVER", &t.server.url)
        .env("SYNCKIT_API_KEY", &t.server.api_key)
        .env("SYNCKIT_PROFILE", t.profile("a"))
        .env("SYNCKIT_CLIENT_ID", "cid_cli")
        .env("BROWSER", &browser)
        .args(["login", "--browser", "--device", "laptop"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(login.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), stderr.next_line()).await;
    let first = first.expect("a line in time").unwrap().expect("login is running");
    let url = first.strip_prefix("Open this URL to sign in: ").unwrap_or_else(|| panic!("{first}"));
    assert!(url.starts_with(&format!("{}/oauth/authorize?response_type=code&client_id=cid_cli&", t.server.url)));
    // The browser was asked to open the same URL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&opened).map_or(true, |opened| opened != url) {
        assert!(std::time::Instant::now() < deadline, "the browser was not opened at {url}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The server sends the browser back with a refusal.
    let query: std::collections::HashMap<String, String> = url
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let port =
        query["redirect_uri"].strip_prefix("http%3A%2F%2F127.0.0.1%3A").unwrap().strip_suffix("%2Fcallback").unwrap();
    let mut conn = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    let target = format!("/callback?error=access_denied&error_description=Signed+out+instead&state={}", query["state"]);
    conn.write_all(format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).await.unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 400 "), "{page}");
    assert!(page.contains("Signed out instead"), "{page}");

    let mut rest = String::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        rest.push_str(&line);
    }
    let status = login.wait().await.unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains(
            "signing in through the browser failed: the sign-in was refused: Signed out instead (access_denied)"
        ),
        "{rest}"
    );
    let mut stdout = String::new();
    login.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
    assert_eq!(stdout, "");
    assert!(!profile_file(&t.profile("a")).exists(), "nothing saved");
}
