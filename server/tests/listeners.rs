//! The TLS and Unix socket listeners beside the plain one: the redis crate and redis-cli over
//! each, client certificates, and hostile clients on the TLS port (plain text, silence).
//!
//! The certificates are made by the test with `openssl` (a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate), in a temporary directory.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{tcp_listener, TestServer};
use ferrocask::Store;
use ferrocask_server::config::{Settings, TlsAuthClients};
use ferrocask_server::{Config, Listeners, Meters};
use redis::{ClientTlsConfig, TlsCertificates};

/// A CA, a server certificate it signed (for 127.0.0.1 and localhost) and a client one.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            dir.path(),
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"],
                &["-subj", "/CN=ferrocask test CA"],
            ],
        );
        for (name, usage, serial) in [("server", "serverAuth", "2"), ("client", "clientAuth", "3")] {
            std::fs::write(
                dir.path().join(format!("{name}.ext")),
                format!("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            let (key, csr, crt, ext) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
            openssl(dir.path(), &[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]]);
            openssl(
                dir.path(),
                &[&[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-out",
                    &crt,
                    "-extfile",
                    &ext,
                ]],
            );
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn settings(&self, auth: TlsAuthClients) -> Settings {
        let file = |name: &str| self.path(name).display().to_string();
        Settings {
            tls_port: 1,
            tls_cert_file: file("server.crt"),
            tls_key_file: file("server.key"),
            tls_ca_cert_file: file("ca.crt"),
            tls_auth_clients: auth,
            ..Settings::default()
        }
    }

    /// The redis crate's TLS client trusting the test CA, with the client certificate if asked.
    fn client(&self, addr: std::net::SocketAddr, with_cert: bool) -> redis::Client {
        let client_tls = with_cert
            .then(|| ClientTlsConfig { client_cert: self.read("client.crt"), client_key: self.read("client.key") });
        let certs = TlsCertificates { client_tls, root_cert: Some(self.read("ca.crt")) };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{}/", addr.port()), certs).unwrap()
    }
}

/// Runs openssl in `dir`; fails with how to install it if it is missing.
fn openssl(dir: &Path, args: &[&[&str]]) {
    let args: Vec<&str> = args.concat();
    let out =
        Command::new("openssl").args(&args).current_dir(dir).output().unwrap_or_else(|e| {
            panic!("openssl: {e}: this test makes its certificates with it: apt-get install openssl")
        });
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A server on a plain and a TLS listener (both on free ports); its TLS address and meters.
fn start_tls(certs: &Certs, auth: TlsAuthClients) -> (TestServer, std::net::SocketAddr, Arc<Meters>) {
    start_tls_with(certs, auth, Config::default())
}

fn start_tls_with(
    certs: &Certs,
    auth: TlsAuthClients,
    config: Config,
) -> (TestServer, std::net::SocketAddr, Arc<Meters>) {
    let acceptor = ferrocask_server::tls::acceptor(&certs.settings(auth)).unwrap();
    let (tls_tx, tls_rx) = std::sync::mpsc::channel();
    let meters = Arc::new(Meters::default());
    let config = Config { meters: meters.clone(), ..config };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let server = TestServer::start_listening(config, store, dir, move || async move {
        let tls = tcp_listener();
        tls_tx.send(tls.local_addr().unwrap()).unwrap();
        Listeners { tcp: Some(tcp_listener()), tls: Some((tls, acceptor)), ..Listeners::default() }
    });
    (server, tls_rx.recv().unwrap(), meters)
}

#[test]
fn the_redis_crate_sets_and_gets_over_tls_beside_the_plain_port() {
    let certs = Certs::make();
    let (server, tls, _) = start_tls(&certs, TlsAuthClients::No);
    let mut conn = certs.client(tls, false).get_connection().unwrap();
    redis::cmd("SET").arg("k").arg("over tls").exec(&mut conn).unwrap();
    let plain: String = redis::cmd("GET").arg("k").query(&mut plain(&server)).unwrap();
    assert_eq!(plain, "over tls", "both listeners serve the one store");
    let value: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(value, "over tls");
    // A large value crosses many TLS records both ways.
    let big = vec![7u8; 3 << 20];
    redis::cmd("SET").arg("big").arg(&big).exec(&mut conn).unwrap();
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut conn).unwrap();
    assert!(back == big, "a 3 MiB value comes back whole");
    let port: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("tls-port").query(&mut conn).unwrap();
    assert_eq!(port, ["tls-port".to_string(), tls.port().to_string()]);
}

/// Adversary: a client that speaks plain RESP to the TLS port, and one that says nothing.
#[test]
fn a_plain_text_client_on_the_tls_port_is_disconnected_and_the_server_goes_on() {
    let certs = Certs::make();
    let (_server, tls, meters) = start_tls(&certs, TlsAuthClients::No);
    let mut silent = std::net::TcpStream::connect(tls).unwrap();
    let mut plain = std::net::TcpStream::connect(tls).unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = Vec::new();
    // An alert at most, then the end of the stream (or a reset): never a RESP reply.
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"+PONG"), "{answer:?}");
    // Counted once the server has closed it: maybe a moment after the client saw the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while meters.tls_handshake_failures.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(meters.tls_handshake_failures.load(Ordering::Relaxed), 1);
    let mut conn = certs.client(tls, false).get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG", "the TLS listener still serves");
    // The silent client holds its slot until the handshake timeout (or shutdown): still open.
    silent.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let err = silent.read(&mut [0u8; 16]).unwrap_err();
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
}

/// The TLS listener shares `maxclients` with the others: a TLS client over it is closed (no
/// error line: that would need a handshake), and the clients within it are served.
#[test]
fn a_tls_client_over_maxclients_is_closed_and_the_others_go_on() {
    let certs = Certs::make();
    let (server, tls, _) = start_tls_with(&certs, TlsAuthClients::No, Config { maxclients: 2, ..Config::default() });
    let mut first = certs.client(tls, false).get_connection().unwrap();
    let mut second = plain(&server);
    let third = certs.client(tls, false).get_connection().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(third.is_err(), "the third client is refused");
    let pong: String = redis::cmd("PING").query(&mut first).unwrap();
    assert_eq!(pong, "PONG");
    let pong: String = redis::cmd("PING").query(&mut second).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn tls_auth_clients_yes_needs_a_certificate_the_ca_signed() {
    let certs = Certs::make();
    let (_server, tls, meters) = start_tls(&certs, TlsAuthClients::Yes);
    let refused =
        certs.client(tls, false).get_connection().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(refused.is_err(), "a client without a certificate is refused");
    let mut conn = certs.client(tls, true).get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG");
    assert!(meters.tls_handshake_failures.load(Ordering::Relaxed) >= 1);
}

#[test]
fn tls_auth_clients_optional_takes_clients_with_or_without_a_certificate() {
    let certs = Certs::make();
    let (_server, tls, _) = start_tls(&certs, TlsAuthClients::Optional);
    for with_cert in [false, true] {
        let mut conn = certs.client(tls, with_cert).get_connection().unwrap();
        let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
        assert_eq!(pong, "PONG", "with a certificate: {with_cert}");
    }
}

/// Runs redis-cli; fails with how to install it if it is missing.
fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}: this test needs Redis's tools: apt-get install -y redis-tools"));
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn redis_cli_speaks_tls_with_a_client_certificate() {
    let certs = Certs::make();
    let (_server, tls, _) = start_tls(&certs, TlsAuthClients::Yes);
    let (ca, crt, key) = (certs.path("ca.crt"), certs.path("client.crt"), certs.path("client.key"));
    let port = tls.port().to_string();
    let tls_args = |command: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["--tls", "--cacert", ca.to_str().unwrap(), "--cert", crt.to_str().unwrap()]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--key", key.to_str().unwrap(), "-h", "127.0.0.1", "-p", &port].map(String::from));
        args.extend(command.iter().map(|s| s.to_string()));
        args
    };
    let run = |command: &[&'static str]| {
        let args = tls_args(command);
        redis_cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(run(&["SET", "cli", "tls"]), "OK");
    assert_eq!(run(&["GET", "cli"]), "tls");
}

#[test]
fn the_unix_socket_serves_the_redis_crate_and_redis_cli_with_its_permissions() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("ferrocask.sock");
    // A stale socket file, as a killed server leaves: replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let settings =
        Settings { port: 0, unixsocket: path.display().to_string(), unixsocketperm: 0o700, ..Settings::default() };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    // Port 0 beside a Unix socket: no plain listener from the settings (as in Redis); the test
    // adds one on a free port.
    let server = TestServer::start_listening(Config::default(), store, dir, move || async move {
        let mut listeners = Listeners::bind(&settings).await.unwrap();
        assert!(listeners.tcp.is_none(), "port 0 with a Unix socket: no plain listener");
        listeners.tcp = Some(tcp_listener());
        listeners
    });
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
    let client = redis::Client::open(format!("redis+unix://{}", path.display())).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("SET").arg("u").arg("unix").exec(&mut conn).unwrap();
    let addr: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
    assert!(addr.contains(&format!("addr={}:0 ", path.display())), "{addr}");
    assert_eq!(redis_cli(&["-s", path.to_str().unwrap(), "GET", "u"]), "unix");
    let plain: String = redis::cmd("GET").arg("u").query(&mut plain(&server)).unwrap();
    assert_eq!(plain, "unix");
    drop(conn);
    drop(server);
    assert!(!path.exists(), "the socket file is removed when the server stops");
}

/// A redis crate connection to the server's plain listener.
fn plain(server: &TestServer) -> redis::Connection {
    redis::Client::open(server.url()).unwrap().get_connection().unwrap()
}
