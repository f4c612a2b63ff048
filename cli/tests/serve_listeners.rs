//! `ferrocask serve` with no plain listener: `--port 0` beside `--unixsocket` serves the Unix
//! socket only (as Redis does), says so in its ready line, and removes the socket file when it
//! stops. (TLS itself is tested in the server crate, in-process.)
#![cfg(unix)]

mod serve_common;

use std::io::{BufRead, BufReader};
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
