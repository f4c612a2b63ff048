//! Smoke runs of Redis's own tools against a real `ferrocask serve`: redis-cli (arguments and
//! commands on stdin, RESP2 and RESP3) and redis-benchmark (plain and pipelined). A missing tool
//! fails the test with the command to install it.
//!
//! Unix only: it drives Debian's redis tools (Linux binaries, which a Windows test under Wine
//! cannot start) and sends SIGKILL/SIGTERM; the server's logic is the same on every platform.
#![cfg(unix)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

mod serve_common;

const INSTALL: &str = "install Redis's tools with `apt-get update && apt-get install -y redis-server redis-tools`";

struct Serve {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve_common::start(dir.path());
    Serve { child, port: addr.port(), _dir: dir }
}

fn tool(name: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(name)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} could not be run ({e}): {INSTALL}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{name} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn cli(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let all: Vec<&str> = ["-p", port.as_str()].into_iter().chain(args.iter().copied()).collect();
    String::from_utf8(tool("redis-cli", &all, None).stdout).unwrap()
}

#[test]
fn redis_cli_talks_to_ferrocask_serve() {
    let s = serve();
    assert_eq!(cli(s.port, &["PING"]), "PONG\n");
    assert_eq!(cli(s.port, &["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(s.port, &["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(s.port, &["INCRBY", "n", "5"]), "5\n");
    assert_eq!(cli(s.port, &["-3", "GET", "greeting"]), "hello world\n");
    assert!(cli(s.port, &["INFO", "server"]).contains("redis_version:"));
    let port = s.port.to_string();
    let piped = tool("redis-cli", &["-p", &port], Some("SET a 1\nINCR a\nMULTI\nINCR a\nEXEC\nGET a\n"));
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), "OK\n2\nOK\nQUEUED\n3\n3\n");
}

#[test]
fn redis_benchmark_runs_against_ferrocask_serve() {
    let s = serve();
    let port = s.port.to_string();
    for extra in [&[][..], &["-P", "16"][..]] {
        let mut args = vec!["-p", &port, "-t", "set,get,incr", "-n", "2000", "-c", "8", "-q"];
        args.extend_from_slice(extra);
        let out = String::from_utf8(tool("redis-benchmark", &args, None).stdout).unwrap();
        for test in ["SET:", "GET:", "INCR:"] {
            assert!(out.contains(test) && out.contains("requests per second"), "{args:?}: {out}");
        }
    }
    assert_eq!(cli(s.port, &["GET", "counter:__rand_int__"]), "4000\n", "every INCR of both runs acknowledged");
}
