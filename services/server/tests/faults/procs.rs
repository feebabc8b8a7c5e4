//! The real processes a fault scenario stops and starts: a private Postgres, a private NATS, and the
//! `synckit-server` binary itself. Each runs under `timeout`, so even a test killed before its clean-up leaves
//! nothing running for longer than [`LIFETIME_SECS`]; faults are delivered by PID (never by name) with `kill`.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// The longest any process of this suite may run: far past a scenario's minute, short enough that a test killed
/// mid-way cannot leave a server behind for long.
pub const LIFETIME_SECS: u32 = 240;

/// A loopback port nothing listens on right now, and that nothing else will take before the process this suite
/// starts on it binds it: below the kernel's ephemeral range, so that no listener or client elsewhere in the test run
/// (which all bind port 0) is given it in between. Were it in the ephemeral range, another test's server could take it
/// and answer this suite's readiness check in place of the process started on it, which fails to bind.
pub fn free_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let first_ephemeral: u16 = range.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(32768);
    let (low, high) = (first_ephemeral / 2, first_ephemeral);
    assert!(high > low + 1000, "the ephemeral port range starts too low ({first_ephemeral}) to pick ports below it");
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    for i in 0..1000u64 {
        // A multiplicative walk over the range from a per-run starting point.
        let port = low + ((seed.wrapping_add(i.wrapping_mul(7919))) % u64::from(high - low)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// `cmd` run under `timeout`, killed after [`LIFETIME_SECS`] whatever happens to the test.
fn bounded(program: &Path) -> Command {
    let mut cmd = Command::new(tool("timeout"));
    cmd.args(["-s", "KILL", &LIFETIME_SECS.to_string()]).arg(program);
    cmd
}

/// A program the suite cannot run without, by absolute path: a missing one fails the test, loudly.
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("`{name}` is not installed, and the fault suite needs it (ops/test checks for it)");
}

/// SIGKILL to the program `timeout` runs for `child` (found by PID, as the one child of `timeout`), then waits
/// for both to be gone. False when there was no such program left to kill.
fn kill_program(child: &mut Child) -> bool {
    let parent = child.id();
    let list = format!("/proc/{parent}/task/{parent}/children");
    let mut killed = false;
    for _ in 0..200 {
        let children = std::fs::read_to_string(&list).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            killed = Command::new(tool("kill")).args(["-KILL", pid]).status().is_ok_and(|s| s.success());
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break; // already gone
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reap(child, Duration::from_secs(10));
    killed
}

fn log_file(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// The last lines of a log, for a failure message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Waits for `child` to exit, killing it if it does not within `within`.
fn reap(child: &mut Child, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A Postgres cluster of the test's own, on a free loopback port, made with `initdb` in a temporary directory:
/// stopping it disturbs no other test. Run as the `postgres` OS user when the test runs as root, since
/// Postgres refuses to run as root.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// `runuser`, which runs `timeout`, which runs the postmaster.
    child: Option<Child>,
    as_root: bool,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let bin = postgres_bin();
        let as_root =
            String::from_utf8(Command::new(tool("id")).arg("-u").output().unwrap().stdout).unwrap().trim() == "0";
        let dir = tempfile::Builder::new().prefix("synckit-faults-pg-").tempdir().unwrap();
        if as_root {
            let status = Command::new(tool("chown")).arg("postgres:postgres").arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown postgres {} failed: is there a `postgres` user?", dir.path().display());
        }
        let mut pg = Self { dir, bin, port: free_port(), child: None, as_root };
        let data = pg.data();
        let out = pg
            .as_owner(&pg.bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        pg.up();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `program` run as the cluster's owner.
    fn as_owner(&self, program: &Path) -> Command {
        if self.as_root {
            let mut cmd = Command::new(tool("runuser"));
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// `postgres://…` for the database `postgres` of this cluster.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the postmaster and waits until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "already up");
        // The faults are process kills, which keep the OS's page cache: fsync would only slow the shared disk.
        let mut cmd = self.as_owner(&tool("timeout"));
        cmd.args(["-s", "KILL", &LIFETIME_SECS.to_string()])
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-k")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log_file(&self.log()))
            .stderr(log_file(&self.log()));
        self.child = Some(cmd.spawn().unwrap());
        let ready = self.bin.join("pg_isready");
        for _ in 0..300 {
            let status = Command::new(&ready)
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                .status()
                .unwrap();
            if status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the test's own Postgres did not start; its log:\n{}", tail(&self.log()));
    }

    /// Stops the postmaster with `pg_ctl stop -m <mode>`: `fast` (sessions ended, a clean shutdown) or `immediate`
    /// (every process quits at once, as in a crash; the next start replays the WAL).
    pub fn down(&mut self, mode: &str) {
        let out = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-t", "30", "-m", mode, "-D"])
            .arg(self.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop -m {mode} failed: {}", String::from_utf8_lossy(&out.stderr));
        reap(self.child.as_mut().expect("up"), Duration::from_secs(10));
        self.child = None;
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self
                .as_owner(&self.bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(self.data())
                .output();
            if let Some(child) = self.child.as_mut() {
                reap(child, Duration::from_secs(10));
            }
        }
    }
}

/// The newest Postgres server programs installed (Debian keeps them in /usr/lib/postgresql/VERSION/bin).
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| {
            ["initdb", "pg_ctl", "postgres", "pg_isready"].iter().all(|p| bin.join(p).exists())
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("initdb, pg_ctl and postgres are not installed under /usr/lib/postgresql/*/bin: the fault suite needs them (ops/ensure-postgres installs them)")
    })
}

/// A NATS server of the test's own, on a free loopback port.
pub struct OwnNats {
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl OwnNats {
    pub fn start(dir: &Path) -> Self {
        let mut nats = Self { port: free_port(), child: None, log: dir.join("nats.log") };
        nats.up();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("nats-server is not installed, and the fault suite needs it (ops/ensure-nats installs it)");
        let child = bounded(bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file(&self.log))
            .stderr(log_file(&self.log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not start on {}; its log:\n{}", self.port, tail(&self.log));
    }

    /// SIGKILL: NATS vanishes without a goodbye to its clients.
    pub fn kill(&mut self) {
        assert!(kill_program(&mut self.child.take().expect("up")), "nats-server had already exited");
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_program(&mut child);
        }
    }
}

/// The `synckit-server` binary, run as a child process on a fixed address and data directory, so that it can be
/// killed and started again on the same ones.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub url: String,
    pub api_key: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl ServerProcess {
    /// Creates an app with `synckit-server admin create-app` unless `api_key` names one already in the database,
    /// then serves. `env` are the `SYNCKIT_*` settings beyond the address, data directory and secrets.
    pub async fn start(dir: &Path, name: &str, env: &[(&str, String)], api_key: Option<String>) -> Self {
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut all: Vec<(String, String)> = vec![
            ("SYNCKIT_LISTEN".into(), addr.to_string()),
            ("SYNCKIT_DATA_DIR".into(), data_dir.display().to_string()),
            ("SYNCKIT_LOG_FORMAT".into(), "json".into()),
            ("SYNCKIT_TOKEN_SECRET".into(), synckit_testkit::TOKEN_SECRET.into()),
            ("SYNCKIT_URL_SECRET".into(), synckit_testkit::URL_SECRET.into()),
            ("SYNCKIT_PRELOGIN_SECRET".into(), synckit_testkit::PRELOGIN_SECRET.into()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let mut server = Self {
            addr,
            url: format!("http://{addr}"),
            api_key: String::new(),
            env: all,
            log: dir.join(format!("{name}.log")),
            child: None,
            starts: 0,
        };
        server.api_key = match api_key {
            Some(key) => key,
            None => {
                let out = server.command().args(["admin", "create-app", "--name", "faults"]).output().unwrap();
                assert!(out.status.success(), "create-app failed: {}", String::from_utf8_lossy(&out.stderr));
                let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                created["api_key"].as_str().unwrap().to_owned()
            }
        };
        server.up().await;
        server
    }

    fn command(&self) -> Command {
        let mut cmd = bounded(Path::new(env!("CARGO_BIN_EXE_synckit-server")));
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).envs(self.env.iter().cloned());
        cmd.stdin(Stdio::null()).stderr(log_file(&self.log));
        cmd
    }

    /// Serves on the same address and data as before, and waits until it is ready.
    pub async fn up(&mut self) {
        assert!(self.child.is_none(), "already up");
        self.child = Some(self.command().arg("serve").stdout(log_file(&self.log)).spawn().unwrap());
        self.starts += 1;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(resp) = http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("synckit-server exited ({status}); its log:\n{}", tail(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("synckit-server was not ready within 30 s; its log:\n{}", tail(&self.log));
    }

    /// SIGTERM, as an operator stops it: the server drains and exits by itself. Returns its exit status; fails the
    /// test if it has not exited `within`.
    #[allow(dead_code)] // the OpenTelemetry suite's, which shares this file
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("up");
        // `timeout` passes the signal on to the program it runs.
        let sent = Command::new(tool("kill")).args(["-TERM", &child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "could not send SIGTERM to synckit-server");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                kill_program(&mut child);
                panic!("synckit-server did not exit within {within:?} of SIGTERM; its log:\n{}", tail(&self.log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no graceful shutdown, no answer to what is in flight.
    pub fn kill(&mut self) {
        let killed = kill_program(&mut self.child.take().expect("up"));
        assert!(killed, "synckit-server had already exited; its log:\n{}", tail(&self.log));
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_program(&mut child);
        }
    }
}
