//! A TCP proxy that stands in for network faults between a client and a server (SyncKit, a blob store, Postgres):
//! it records the HTTP requests it forwards, can fault the answer to a chosen request, and can go down as a whole.
//!
//! Faults are armed for the next request whose method and head match; each fires once. Bytes that do not start an
//! HTTP request (Postgres' protocol, say) pass through untouched.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the answer of one request. The request itself always reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The answer never arrives: the connection closes before its first byte.
    Swallow,
    /// The connection closes after this many bytes of the answer (its head included).
    Cut(usize),
    /// The answer never arrives and the connection stays open, as a hung peer's would.
    Stall,
    /// One bit of the answer's body flips, at this offset.
    Flip(usize),
    /// These bytes (a whole HTTP answer) come back instead, and the connection closes.
    Replace(String),
}

/// A running proxy; cheap to clone. Its tasks run until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `http://` and the proxy's address.
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    up: Arc<AtomicBool>,
    /// Bumped to drop every open connection.
    generation: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// The next requests with this method whose head contains this text get these faults, one each.
    armed: Vec<(String, String, Fault)>,
    fired: usize,
    /// Every request's line and headers, in order.
    heads: Vec<String>,
}

impl FaultProxy {
    /// A proxy in front of `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port for the proxy");
        let addr = listener.local_addr().expect("a bound address");
        let state = Arc::new(Mutex::new(State::default()));
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let proxy = Self { url: format!("http://{addr}"), addr, state, up, generation };
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let mut dropped = accepting.generation.subscribe();
                let state = accepting.state.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = relay(client, target, state) => {}
                        _ = dropped.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    /// Faults the answer to the next `method` request whose head (line and headers) contains `needle`.
    pub fn arm(&self, method: &str, needle: &str, fault: Fault) {
        self.state.lock().unwrap().armed.push((method.to_owned(), needle.to_owned(), fault));
    }

    /// How many armed faults have fired.
    pub fn fired(&self) -> usize {
        self.state.lock().unwrap().fired
    }

    /// Every request forwarded so far: its line and headers.
    pub fn heads(&self) -> Vec<String> {
        self.state.lock().unwrap().heads.clone()
    }

    /// The `method` requests whose head contains `needle`, in order.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<String> {
        let prefix = format!("{method} ");
        self.heads().into_iter().filter(|h| h.starts_with(&prefix) && h.contains(needle)).collect()
    }

    /// Up, the proxy forwards. Down, it drops every open connection and closes new ones at once, as a peer that
    /// went away would.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

/// What the answer now coming back gets: its fault, and how many faults this connection had so far, so a new one
/// is counted from its own start.
type Current = Arc<Mutex<(Option<Fault>, u64)>>;

async fn relay(client: TcpStream, target: SocketAddr, state: Arc<Mutex<State>>) {
    let Ok(server) = TcpStream::connect(target).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let current: Current = Arc::new(Mutex::new((None, 0)));
    let set = current.clone();
    // Aborted however this relay ends, dropped with its connection included, so both sockets close.
    let _up = AbortOnDrop(tokio::spawn(async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some(head) = request_head(&buf[..n]) {
                let mut state = state.lock().unwrap();
                state.heads.push(head.clone());
                let hit = state
                    .armed
                    .iter()
                    .position(|(m, needle, _)| head.starts_with(&format!("{m} ")) && head.contains(needle));
                if let Some(i) = hit {
                    let (_, _, fault) = state.armed.remove(i);
                    state.fired += 1;
                    let mut current = set.lock().unwrap();
                    *current = (Some(fault), current.1 + 1);
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }));
    answer(&mut server_read, &mut client_write, &current).await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies answers back to the client, applying the fault of each.
async fn answer(server: &mut tokio::net::tcp::OwnedReadHalf, client: &mut OwnedWriteHalf, current: &Current) {
    let mut buf = vec![0; 64 * 1024];
    // Bytes of the faulted answer so far, its head while the body has not started, and which fault it is.
    let (mut answered, mut head, mut body_at, mut seen) = (0usize, Vec::new(), None::<usize>, 0);
    loop {
        let n = match server.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (fault, generation) = current.lock().unwrap().clone();
        if generation != seen {
            (answered, head, body_at, seen) = (0, Vec::new(), None, generation);
        }
        let chunk = &mut buf[..n];
        match fault {
            None => {}
            Some(Fault::Swallow) => return,
            Some(Fault::Stall) => return std::future::pending().await,
            Some(Fault::Replace(answer)) => {
                let _ = client.write_all(answer.as_bytes()).await;
                return;
            }
            Some(Fault::Cut(after)) => {
                let keep = after.saturating_sub(answered).min(n);
                let _ = client.write_all(&chunk[..keep]).await;
                answered += n;
                if answered >= after {
                    return;
                }
                continue;
            }
            Some(Fault::Flip(at)) => {
                if body_at.is_none() {
                    head.extend_from_slice(chunk);
                    body_at = head.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
                }
                if let Some(target) = body_at.map(|b| b + at)
                    && (answered..answered + n).contains(&target)
                {
                    chunk[target - answered] ^= 1;
                }
                answered += n;
            }
        }
        if client.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// The line and headers of a request, if `bytes` starts one.
fn request_head(bytes: &[u8]) -> Option<String> {
    let methods: [&[u8]; 5] = [b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE "];
    if !methods.iter().any(|m| bytes.starts_with(m)) {
        return None;
    }
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(bytes.len());
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Where a request's `Range: bytes=N-` starts.
pub fn range_start(head: &str) -> Option<u64> {
    let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with("range:"))?;
    line.split_once("bytes=")?.1.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_request_heads_and_ranges() {
        let head = request_head(b"GET /x HTTP/1.1\r\nRange: bytes=65536-\r\n\r\nbody").unwrap();
        assert_eq!(head, "GET /x HTTP/1.1\r\nRange: bytes=65536-");
        assert_eq!(range_start(&head), Some(65536));
        assert_eq!(request_head(b"\x00\x00\x00\x08postgres"), None);
    }
}
