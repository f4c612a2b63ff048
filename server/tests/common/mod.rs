//! Shared by the server's integration tests: an in-process server on a temporary store, a raw
//! RESP client that returns reply bytes, a reply parser, and a real redis-server to compare with.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocask::{Options, Store};
use ferrocask_server::{Config, Listeners};

/// A tokio listener on a free loopback port (call it inside a runtime).
pub fn tcp_listener() -> tokio::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(listener).unwrap()
}

/// `options` with the prefixes the server's collections need ordered
/// (`ferrocask_server::ORDERED_PREFIXES`), as `ferrocask serve` declares them.
pub fn ordered(options: Options) -> Options {
    ferrocask_server::ORDERED_PREFIXES.iter().fold(options, |options, prefix| options.ordered_prefix(*prefix))
}

/// A server running in this process on its own runtime thread, on a fresh store.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(Config::default(), Options::default())
    }

    /// A server on a store opened with `options` and the collections' ordered prefixes, as
    /// `ferrocask serve` opens it.
    pub fn start_with(config: Config, options: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_with(dir.path(), ordered(options)).unwrap());
        TestServer::start_on(config, store, dir)
    }

    /// Serves a store the test opened itself (on a file system of its choice); `dir` is kept
    /// for as long as the server runs.
    pub fn start_on(config: Config, store: Arc<Store>, dir: tempfile::TempDir) -> TestServer {
        TestServer::start_listening(config, store, dir, || async { Listeners::tcp(tcp_listener()) })
    }

    /// Serves on the listeners `listen` makes (it runs inside the server's runtime); `addr` is
    /// the plain listener's address, else the TLS one's.
    pub fn start_listening<F: std::future::Future<Output = Listeners>>(
        config: Config,
        store: Arc<Store>,
        dir: tempfile::TempDir,
        listen: impl FnOnce() -> F + Send + 'static,
    ) -> TestServer {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listeners = listen().await;
                addr_tx.send(listeners.tcp_addr().or(listeners.tls_addr()).unwrap()).unwrap();
                ferrocask_server::run_on(listeners, store, config, async move {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(20)).expect("the server starts");
        TestServer { addr, shutdown: Some(stop_tx), thread: Some(thread), dir }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A cluster of `ferrocask serve` members running in this process (one runtime thread), each on
/// its own temporary directory, Raft port and client port.
pub struct TestCluster {
    /// Each member's client address, by node id - 1.
    pub addrs: Vec<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `size` members and waits until one of them leads.
    pub fn start(size: u64) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let peers: std::collections::BTreeMap<u64, String> =
            (1..=size).map(|id| (id, format!("127.0.0.1:{}", free_port()))).collect();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
                let mut nodes = Vec::new();
                let mut servers = Vec::new();
                for id in 1..=size {
                    let config = ferrocask_raft::node::NodeConfig {
                        id,
                        dir: root.join(format!("node-{id}")),
                        peers: peers.clone(),
                        snapshot_every: 500,
                        bootstrap: true,
                    };
                    let value_bytes_max = Config::default().value_bytes_max;
                    let node =
                        ferrocask_raft::node::Node::start(config, ferrocask_server::cluster::applier(value_bytes_max))
                            .await
                            .unwrap();
                    let cluster = ferrocask_server::cluster::Cluster::start(&node);
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    addr_tx.send(listener.local_addr().unwrap()).unwrap();
                    let store = node.state_machine.store().clone();
                    let config = Config { cluster: Some(cluster), ..Config::default() };
                    let mut stop = stop_all.subscribe();
                    servers.push(tokio::spawn(async move {
                        ferrocask_server::run(listener, store, config, async move {
                            let _ = stop.recv().await;
                        })
                        .await
                        .unwrap();
                    }));
                    nodes.push(node);
                }
                let _ = stop_rx.await;
                let _ = stop_all.send(());
                for server in servers {
                    let _ = server.await;
                }
                for node in nodes {
                    node.shutdown().await;
                }
            });
        });
        let addrs: Vec<SocketAddr> =
            (0..size).map(|_| addr_rx.recv_timeout(Duration::from_secs(30)).expect("a member starts")).collect();
        let cluster = TestCluster { addrs, shutdown: Some(stop_tx), thread: Some(thread), dir };
        assert!(wait_for(Duration::from_secs(30), || cluster.leader().is_some()), "a leader within 30 s");
        cluster
    }

    /// What member `i`'s INFO raft says its role is.
    pub fn role(&self, i: usize) -> String {
        let info = RawClient::connect(self.addrs[i]).cmd(&["INFO", "raft"]);
        let info = String::from_utf8_lossy(&info).into_owned();
        info.lines().find_map(|l| l.strip_prefix("role:")).unwrap_or("").trim().to_string()
    }

    /// The member that leads now, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.addrs.len()).find(|&i| self.role(i) == "leader")
    }

    /// A member that does not lead now.
    pub fn follower(&self) -> usize {
        let leader = self.leader();
        (0..self.addrs.len()).find(|&i| Some(i) != leader).expect("more than one member")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client that sends commands as RESP arrays and returns each reply's raw bytes.
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        RawClient::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream.set_nodelay(true).unwrap();
        RawClient { stream, buf: Vec::new() }
    }

    /// Sends one command, returns its reply's bytes.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args);
        self.reply().expect("a reply before the connection closed")
    }

    /// Sends one command without reading; a failed write shows as a missing reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let _ = self.stream.write_all(&encode(args));
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one reply; `None` if the server closed the connection first.
    pub fn reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(len) = reply_len(&self.buf) {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {
                    return None
                }
                Err(e) => panic!("reading a reply: {e}"),
            }
        }
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// The length of the first whole reply in `buf` (RESP2 or RESP3), if there is one.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    value_end(buf, 0)
}

fn value_end(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let end = line_end(buf, at)?;
    let next = end + 2;
    if matches!(kind, b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(') {
        // A line's text may hold any byte but CR and LF (errors quote raw client bytes).
        return Some(next);
    }
    let header = std::str::from_utf8(&buf[at + 1..end]).ok()?;
    match kind {
        b'$' | b'=' | b'!' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(next);
            }
            let stop = next + n as usize + 2;
            (buf.len() >= stop).then_some(stop)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            let items = if matches!(kind, b'%' | b'|') { n * 2 } else { n };
            let mut pos = next;
            for _ in 0..items.max(0) {
                pos = value_end(buf, pos)?;
            }
            Some(pos)
        }
        _ => panic!("unexpected reply type {:?} in {:?}", kind as char, String::from_utf8_lossy(buf)),
    }
}

/// A parsed reply, for comparisons that need more than bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum R {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<R>),
    /// A RESP3 set (`~`).
    Set(Vec<R>),
    /// A RESP3 map (`%`), keys and values in turn.
    Map(Vec<R>),
    /// RESP3's push type (`>`).
    Push(Vec<R>),
    Other(Vec<u8>),
}

impl std::fmt::Debug for R {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            R::Simple(b) => write!(f, "+{:?}", text(b)),
            R::Error(b) => write!(f, "-{:?}", text(b)),
            R::Int(n) => write!(f, ":{n}"),
            R::Bulk(b) => write!(f, "${:?}", text(b)),
            R::Null => write!(f, "null"),
            R::Array(items) => f.debug_list().entries(items).finish(),
            R::Set(items) => write!(f, "set {:?}", items),
            R::Map(items) => write!(f, "map {:?}", items),
            R::Push(items) => write!(f, "push {:?}", items),
            R::Other(b) => write!(f, "other {:?}", text(b)),
        }
    }
}

/// Parses one whole reply.
pub fn parse(buf: &[u8]) -> R {
    parse_at(buf, 0).0
}

fn parse_at(buf: &[u8], at: usize) -> (R, usize) {
    let end = line_end(buf, at).expect("a whole reply");
    let header = &buf[at + 1..end];
    let next = end + 2;
    let int = || std::str::from_utf8(header).unwrap().parse::<i64>().unwrap();
    match buf[at] {
        b'+' => (R::Simple(header.to_vec()), next),
        b'-' => (R::Error(header.to_vec()), next),
        b':' => (R::Int(int()), next),
        b'_' => (R::Null, next),
        b'$' | b'=' if int() < 0 => (R::Null, next),
        b'$' | b'=' => {
            let n = int() as usize;
            (R::Bulk(buf[next..next + n].to_vec()), next + n + 2)
        }
        b'*' | b'~' | b'%' if int() < 0 => (R::Null, next),
        b'*' | b'~' | b'%' | b'>' => {
            let n = if buf[at] == b'%' { int() * 2 } else { int() };
            let mut items = Vec::new();
            let mut pos = next;
            for _ in 0..n {
                let (item, after) = parse_at(buf, pos);
                items.push(item);
                pos = after;
            }
            let reply = match buf[at] {
                b'~' => R::Set(items),
                b'%' => R::Map(items),
                b'>' => R::Push(items),
                _ => R::Array(items),
            };
            (reply, pos)
        }
        _ => (R::Other(buf[at..next].to_vec()), next),
    }
}

/// A real redis-server on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts redis-server; panics, saying how to install it, if it is missing.
    pub fn start() -> RedisServer {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "1",
            ])
            .args(["--daemonize", "no", "--loglevel", "notice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!(
                "redis-server could not be started ({e}). The differential tests need it: install it with \
                 `apt-get update && apt-get install -y redis-server redis-tools` (Debian), and make sure \
                 redis-server is on PATH"
            ),
        };
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("redis-server says it is ready");
        RedisServer { port, child }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for `condition`, polling, for at most `limit`.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::yield_now();
    }
    condition()
}
