//! Two copies of the notes app, run as processes on two profiles of one account against a real server, converge
//! after edits on both sides while one of them is offline, and a restarted copy comes back without a password.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use synckit_testkit::{FaultProxy, TestServer, email, on_each_engine};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

on_each_engine!(two_copies_converge_after_edits_on_both_sides_one_of_them_offline);

/// How long one answer, or convergence, may take before the test fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running copy of the app, driven through its standard input and output.
struct Copy {
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

impl Copy {
    /// Starts a copy on `profile`; `email` signs in (only a first start needs it).
    fn start(url: &str, api_key: &str, profile: &Path, email: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_synckit-notes"));
        command
            .arg(profile)
            .env("SYNCKIT_SERVER", url)
            .env("SYNCKIT_API_KEY", api_key)
            .env("NOTES_KEYS", "files")
            .env_remove("NOTES_EMAIL")
            .env_remove("NOTES_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(email) = email {
            command.env("NOTES_EMAIL", email).env("NOTES_PASSWORD", "a long passphrase");
        }
        let mut child = command.spawn().expect("the notes app starts");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, input, output }
    }

    async fn send(&mut self, line: &str) {
        self.input.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let line = tokio::time::timeout(PATIENCE, self.output.next_line()).await.expect("the app answers in time");
        line.unwrap().expect("the app is running")
    }

    /// Runs an edit command; returns its answer.
    async fn run(&mut self, command: &str) -> String {
        self.send(command).await;
        let answer = self.line().await;
        assert!(!answer.starts_with("error"), "{command}: {answer}");
        answer
    }

    /// Adds a note; returns its id.
    async fn add(&mut self, text: &str) -> String {
        let answer = self.run(&format!("add {text}")).await;
        answer.strip_prefix("added ").expect("added ID").to_owned()
    }

    /// The notes it shows, (id, text) by id.
    async fn list(&mut self) -> Vec<(String, String)> {
        self.send("list").await;
        let mut notes = Vec::new();
        loop {
            let line = self.line().await;
            match line.split_once("  ") {
                Some((id, text)) => notes.push((id.to_owned(), text.to_owned())),
                None => {
                    assert_eq!(line, format!("{} notes", notes.len()));
                    return notes;
                }
            }
        }
    }

    /// Waits until it shows exactly `want`.
    async fn shows(&mut self, want: &[(&str, &str)]) {
        let mut want: Vec<(String, String)> = want.iter().map(|(i, t)| (i.to_string(), t.to_string())).collect();
        want.sort();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notes = self.list().await;
            if notes == want {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "shows {notes:?}, not {want:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn quit(mut self) {
        self.send("quit").await;
        let status = tokio::time::timeout(PATIENCE, self.child.wait()).await.expect("it quits").unwrap();
        assert!(status.success(), "{status}");
    }
}

async fn two_copies_converge_after_edits_on_both_sides_one_of_them_offline(server: TestServer) {
    let profiles = tempfile::tempdir().unwrap();
    let (laptop_dir, phone_dir) = (profiles.path().join("laptop"), profiles.path().join("phone"));
    // The phone reaches the server through a proxy that can cut it off.
    let proxy = FaultProxy::start(server.addr).await;
    let email = email();
    let mut laptop = Copy::start(&server.url, &server.api_key, &laptop_dir, Some(&email));
    let shopping = laptop.add("shopping").await;
    let todo = laptop.add("todo").await;
    let mut phone = Copy::start(&proxy.url, &server.api_key, &phone_dir, Some(&email));
    phone.shows(&[(&shopping, "shopping"), (&todo, "todo")]).await;

    // Offline, the phone edits a note the laptop edits too, and adds one; the laptop also removes one.
    proxy.set_up(false);
    laptop.run(&format!("edit {shopping} milk")).await;
    laptop.run(&format!("rm {todo}")).await;
    laptop.shows(&[(&shopping, "milk")]).await;
    // (Live sync has most likely pushed them already; this makes sure they are on the server first.)
    assert!(laptop.run("sync").await.starts_with("synced: "));
    phone.run(&format!("edit {shopping} eggs")).await;
    let call = phone.add("call home").await;
    phone.shows(&[(&shopping, "eggs"), (&todo, "todo"), (&call, "call home")]).await;

    // Back online, the phone's edits reach the server after the laptop's: they are the later writes, everywhere.
    proxy.set_up(true);
    let both = [(shopping.as_str(), "eggs"), (call.as_str(), "call home")];
    phone.shows(&both).await;
    laptop.shows(&both).await;

    // Restarted without a password, the laptop restores its session, key and notes, and syncs on.
    laptop.quit().await;
    let mut laptop = Copy::start(&server.url, &server.api_key, &laptop_dir, None);
    laptop.shows(&both).await;
    laptop.run(&format!("edit {call} call home tonight")).await;
    phone.shows(&[(&shopping, "eggs"), (&call, "call home tonight")]).await;
    phone.quit().await;
    laptop.quit().await;
}
