//! `ferrocask serve` with no plain listener: `--port 0` beside `--unixsocket` serves the Unix
//! socket only (as Redis does), says so in its ready line, and removes the socket file when it
//! stops; `--port 0` beside `--tls-port` serves TLS only, to redis-cli. (TLS in depth, client
//! certificates included, is tested in the server crate, in-process.)
#![cfg(unix)]

mod serve_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

#[test]
fn port_0_beside_a_unix_socket_serves_the_socket_only_and_removes_it_at_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("ferrocask.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocask"))
        .arg("--dir")
        .arg(tmp.path().join("store"))
        .args(["serve", "--port", "0", "--unixsocketperm", "700", "--unixsocket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let served = serve_common::Served::new(child);
    assert_eq!(line.trim_end(), format!("ready on unix {}", socket.display()), "the only listener");
    let client = redis::Client::open(format!("redis+unix://{}", socket.display())).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("SET").arg("k").arg("v").exec(&mut conn).unwrap();
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("unix*").query(&mut conn).unwrap();
    assert_eq!(config, ["unixsocket", socket.to_str().unwrap(), "unixsocketperm", "700"]);
    let port: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("port").query(&mut conn).unwrap();
    assert_eq!(port, ["port", "0"], "no plain listener");
    drop(conn);
    served.stop();
    assert!(!socket.exists(), "the socket file is removed at a clean exit");
}

/// The TLS flags through the binary: `--port 0` beside `--tls-port` serves TLS only, and
/// redis-cli speaks to it with the certificate as its CA (a self-signed one, made here).
#[test]
fn port_0_beside_tls_serves_tls_only_to_redis_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}: apt-get install -y openssl redis-tools"));
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "server.key",
            "-out",
            "server.crt",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
    );
    let tls_port = serve_common::free_port().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocask"))
        .arg("--dir")
        .arg(tmp.path().join("store"))
        .args(["serve", "--port", "0", "--tls-port", &tls_port, "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(tmp.path().join("server.crt"))
        .arg("--tls-key-file")
        .arg(tmp.path().join("server.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let served = serve_common::Served::new(child);
    assert_eq!(line.trim_end(), format!("ready on tls 127.0.0.1:{tls_port}"), "the only listener");
    let cli = |command: &[&str]| {
        let mut args = vec!["--tls", "--cacert", "server.crt", "-h", "127.0.0.1", "-p", &tls_port];
        args.extend_from_slice(command);
        run("redis-cli", &args)
    };
    assert_eq!(cli(&["SET", "k", "over tls"]), "OK");
    assert_eq!(cli(&["GET", "k"]), "over tls");
    assert_eq!(cli(&["CONFIG", "GET", "tls-auth-clients"]), "tls-auth-clients\nno");
    // Plain text on the TLS port: disconnected, and logged (at info: the first of a spell).
    let mut plain = std::net::TcpStream::connect(format!("127.0.0.1:{tls_port}")).unwrap();
    plain.write_all(b"PING\r\n").unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    served.stop();
    let log = log.join().unwrap();
    assert!(log.contains("TLS handshake failed") && log.contains("failures_so_far=1"), "{log}");
}
