//! `ferrocask cluster`, README's one-command local cluster: it starts three `serve` members,
//! prints each one's PID and addresses, any member takes any command, and a SIGTERM to it stops
//! every member (the adversary: a parent stopped by a service manager must not leave members
//! running).
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on every wait here (a hang, not a speed, is what it guards against).
const WAIT: Duration = Duration::from_secs(30);

/// Three consecutive free ports for clients and three for Raft, below the ephemeral range.
fn consecutive_ports() -> (u16, u16) {
    let seed = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for attempt in 0..200u64 {
        let base = 21_000 + ((seed.wrapping_add(attempt * 7919)) % 9_000) as u16;
        let (port, raft) = (base, base + 10);
        let held: Vec<_> = (0..3)
            .flat_map(|i| [port + i, raft + i])
            .filter_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == 6 {
            return (port, raft);
        }
    }
    panic!("no run of free ports found");
}

fn alive(pid: u32) -> bool {
    Command::new("kill").args(["-0", &pid.to_string()]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Retries what the cluster refuses as not applied (TRYAGAIN, CLUSTERDOWN) while it elects its
/// first leader, within [`WAIT`].
fn retried<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let result = client.get_connection().and_then(|mut c| cmd.query::<T>(&mut c));
        match result {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline && matches!(e.code(), Some("TRYAGAIN" | "CLUSTERDOWN")) => {
                std::thread::yield_now()
            }
            Err(e) => panic!("{cmd:?} on port {port}: {e}"),
        }
    }
}

#[test]
fn cluster_starts_three_members_that_serve_and_stop_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (port, raft) = consecutive_ports();
    let mut parent = Command::new(env!("CARGO_BIN_EXE_ferrocask"))
        .arg("--dir")
        .arg(dir.path())
        .args(["cluster", "--port", &port.to_string(), "--raft-port", &raft.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("cluster of 3 ready") {
            break;
        }
        // node N: pid P clients 127.0.0.1:PORT raft 127.0.0.1:PORT dir D
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((words[0], words[2], words[4], words[6]), ("node", "pid", "clients", "raft"), "{line}");
        pids.push(words[3].parse::<u32>().unwrap());
    }
    assert_eq!(pids.len(), 3, "one line per member");
    assert!(pids.iter().all(|&pid| alive(pid)));

    let set: String = retried(port + 1, redis::cmd("SET").arg("hello").arg("world"));
    assert_eq!(set, "OK");
    let got: String = retried(port + 2, redis::cmd("GET").arg("hello"));
    assert_eq!(got, "world", "a write through one member is read through another");

    assert!(Command::new("kill").args(["-TERM", &parent.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + WAIT;
    while parent.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "cluster exits after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(parent.wait().unwrap().success());
    for pid in pids {
        assert!(!alive(pid), "member {pid} stopped with its parent");
    }
}

/// Adversary: an operator's single-node habit carried into a cluster. `--appendfsync everysec`
/// would mean nothing on a member (its log syncs before every acknowledgement): the start is
/// refused, with the reason, before any directory is made.
#[test]
fn a_member_with_appendfsync_everysec_is_refused_before_it_opens_anything() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node-1");
    let (port, raft) = consecutive_ports();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrocask"))
        .arg("--dir")
        .arg(&node_dir)
        .args(["serve", "--port", &port.to_string(), "--appendfsync", "everysec", "--node-id", "1"])
        .args(["--peers", &format!("1=127.0.0.1:{raft}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("appendfsync everysec applies to a single node"), "{stderr}");
    assert!(!node_dir.exists(), "nothing was created");
}
