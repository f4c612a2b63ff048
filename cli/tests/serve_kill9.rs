//! kill -9 of a real `ferrocask serve`: clients write over several connections (SET of fresh
//! keys, INCR, MULTI/EXEC of two keys and a counter, HSET, RPUSH, ZADD, and a MULTI/EXEC over a
//! hash and a list) and record every acknowledged reply; the server is SIGKILLed at a random
//! moment (after a random number of acknowledgements), restarted on the same directory, and must
//! hold every acknowledged write: each acknowledged SET, HSET field and ZADD member, each counter
//! at least its last acknowledged value, each EXEC whole (both keys equal; the hash's counter
//! equal to the list's length), every acknowledged RPUSH in the list in push order, and every
//! acknowledged SET of a fourth client that pipelines batches of 16 (one group each). 24 kills.
//!
//! Unix only: it sends SIGKILL and SIGTERM, which Windows (and Wine) do not have; the server's
//! logic is the same on every platform.
#![cfg(unix)]

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod serve_common;

use serve_common::start;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{parse, RawClient, R};
use ferrocask::testing::Rng;

const KILLS: usize = 24;
const CLIENTS: usize = 3;
/// SETs per pipelined batch.
const PIPELINE: usize = 16;

/// What one client saw acknowledged.
#[derive(Default, Clone)]
struct Acked {
    sets: Vec<(String, String)>,
    counter: i64,
    exec: i64,
    /// Acknowledged HSETs: (field, value) of the client's hash.
    fields: Vec<(String, String)>,
    /// Acknowledged RPUSHes of the client's list, in push order.
    pushed: Vec<String>,
    /// Acknowledged SETs sent in pipelined batches (one socket write each, one group each).
    piped: Vec<String>,
    /// Acknowledged ZADDs: (member, score) of the client's sorted set.
    scored: Vec<(String, i64)>,
}

fn bulk(r: &R) -> Option<String> {
    match r {
        R::Bulk(b) => Some(String::from_utf8(b.clone()).unwrap()),
        _ => None,
    }
}

fn int_of(r: &R) -> i64 {
    bulk(r).map_or(0, |s| s.parse().unwrap())
}

/// Writes until the connection fails; records each acknowledgement in `acked` as it arrives.
fn write_until_killed(addr: SocketAddr, id: usize, round: usize, acked: &Mutex<Acked>, acks: &AtomicUsize) {
    let Ok(stream) = std::net::TcpStream::connect(addr) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut c = RawClient::from_stream(stream);
    let mut n = 0u64;
    loop {
        n += 1;
        let key = format!("set:{id}:{round}:{n}");
        c.send(&["SET", &key, &n.to_string()]);
        match c.reply().map(|r| parse(&r)) {
            Some(R::Simple(ok)) if ok == b"OK" => acked.lock().unwrap().sets.push((key, n.to_string())),
            _ => return,
        }
        acks.fetch_add(1, Ordering::Relaxed);
        c.send(&["INCR", &format!("counter:{id}")]);
        match c.reply().map(|r| parse(&r)) {
            Some(R::Int(v)) => acked.lock().unwrap().counter = v,
            _ => return,
        }
        let (a, b, t) = (format!("tx:{id}:a"), format!("tx:{id}:b"), format!("tx:{id}:n"));
        for cmd in [vec!["MULTI"], vec!["INCR", &a], vec!["INCR", &b], vec!["INCR", &t], vec!["EXEC"]] {
            c.send(&cmd);
        }
        for _ in 0..4 {
            if c.reply().is_none() {
                return;
            }
        }
        match c.reply().map(|r| parse(&r)) {
            Some(R::Array(items)) if items.len() == 3 => {
                let R::Int(v) = items[2] else { panic!("EXEC's INCR replied {:?}", items[2]) };
                assert_eq!(items[0], items[1], "the EXEC's two INCRs saw different values");
                acked.lock().unwrap().exec = v;
            }
            _ => return,
        }
        acks.fetch_add(1, Ordering::Relaxed);
        if !write_collections(&mut c, id, &format!("{round}:{n}"), n, acked) {
            return;
        }
    }
}

/// Pipelined batches of SETs, each sent in one write so the server queues them together and
/// leads them as one group (`commit.rs`), until the server dies; every SET whose `+OK` arrived
/// is recorded. The kill lands anywhere: mid-batch, mid-sync, between replies.
fn pipeline_until_killed(addr: SocketAddr, round: usize, acked: &Mutex<Acked>, acks: &AtomicUsize) {
    let Ok(stream) = std::net::TcpStream::connect(addr) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut c = RawClient::from_stream(stream);
    for batch in 0.. {
        let keys: Vec<String> = (0..PIPELINE).map(|i| format!("pipe:{round}:{batch}:{i}")).collect();
        let bytes: Vec<u8> = keys.iter().flat_map(|k| common::encode(&["SET", k, k])).collect();
        if std::io::Write::write_all(&mut c.stream, &bytes).is_err() {
            return;
        }
        for key in keys {
            match c.reply().map(|r| parse(&r)) {
                Some(R::Simple(ok)) if ok == b"OK" => acked.lock().unwrap().piped.push(key),
                _ => return,
            }
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One HSET, RPUSH and ZADD of `item`, then a MULTI/EXEC over a hash and a list; records what is
/// acknowledged. `false` once the connection fails.
fn write_collections(c: &mut RawClient, id: usize, item: &str, n: u64, acked: &Mutex<Acked>) -> bool {
    let (hash, list, zset) = (format!("h:{id}"), format!("l:{id}"), format!("z:{id}"));
    let field = format!("f{item}");
    c.send(&["HSET", &hash, &field, item]);
    match c.reply().map(|r| parse(&r)) {
        Some(R::Int(1)) => acked.lock().unwrap().fields.push((field, item.to_string())),
        Some(other) => panic!("HSET of a new field replied {other:?}"),
        None => return false,
    }
    c.send(&["RPUSH", &list, item]);
    match c.reply().map(|r| parse(&r)) {
        Some(R::Int(_)) => acked.lock().unwrap().pushed.push(item.to_string()),
        Some(other) => panic!("RPUSH replied {other:?}"),
        None => return false,
    }
    c.send(&["ZADD", &zset, &n.to_string(), item]);
    match c.reply().map(|r| parse(&r)) {
        Some(R::Int(1)) => acked.lock().unwrap().scored.push((item.to_string(), n as i64)),
        Some(other) => panic!("ZADD of a new member replied {other:?}"),
        None => return false,
    }
    let (counted, listed) = (format!("hx:{id}"), format!("lx:{id}"));
    for cmd in [vec!["MULTI"], vec!["HINCRBY", &counted, "n", "1"], vec!["RPUSH", &listed, "x"], vec!["EXEC"]] {
        c.send(&cmd);
    }
    for _ in 0..3 {
        if c.reply().is_none() {
            return false;
        }
    }
    match c.reply().map(|r| parse(&r)) {
        Some(R::Array(items)) if items.len() == 2 => {
            assert_eq!(items[0], items[1], "the EXEC's HINCRBY and RPUSH counted differently");
            true
        }
        Some(other) => panic!("EXEC replied {other:?}"),
        None => false,
    }
}

/// Checks the client's collections after a restart against what it saw acknowledged.
fn verify_collections(c: &mut RawClient, id: usize, a: &Acked) {
    let hash = format!("h:{id}");
    for (field, value) in &a.fields {
        assert_eq!(bulk(&parse(&c.cmd(&["HGET", &hash, field]))).as_deref(), Some(value.as_str()), "HSET {field}");
    }
    let R::Array(list) = parse(&c.cmd(&["LRANGE", &format!("l:{id}"), "0", "-1"])) else { panic!("LRANGE") };
    let list: Vec<String> = list.iter().filter_map(bulk).collect();
    // Every acknowledged push, in push order; a push in flight at a kill may be there too.
    let mut rest = list.iter();
    for item in &a.pushed {
        assert!(rest.any(|l| l == item), "acknowledged RPUSH {item} missing or out of order in {list:?}");
    }
    let zset = format!("z:{id}");
    for (member, score) in &a.scored {
        assert_eq!(int_of(&parse(&c.cmd(&["ZSCORE", &zset, member]))), *score, "ZADD {member}");
    }
    let counted = int_of(&parse(&c.cmd(&["HGET", &format!("hx:{id}"), "n"])));
    let R::Int(listed) = parse(&c.cmd(&["LLEN", &format!("lx:{id}")])) else { panic!("LLEN") };
    assert_eq!(counted, listed, "EXEC over a hash and a list half applied");
}

/// Checks the restarted server against everything acknowledged before the kill.
fn verify(addr: SocketAddr, acked: &[Acked]) {
    let mut c = RawClient::connect(addr);
    for (id, a) in acked.iter().enumerate() {
        for (key, value) in &a.sets {
            assert_eq!(bulk(&parse(&c.cmd(&["GET", key]))).as_deref(), Some(value.as_str()), "acknowledged SET {key}");
        }
        let counter = int_of(&parse(&c.cmd(&["GET", &format!("counter:{id}")])));
        assert!(counter >= a.counter, "counter:{id} is {counter}, acknowledged {}", a.counter);
        let x = int_of(&parse(&c.cmd(&["GET", &format!("tx:{id}:a")])));
        let y = int_of(&parse(&c.cmd(&["GET", &format!("tx:{id}:b")])));
        let n = int_of(&parse(&c.cmd(&["GET", &format!("tx:{id}:n")])));
        assert!(x == y && y == n, "EXEC half applied: tx:{id} a={x} b={y} n={n}");
        assert!(n >= a.exec, "tx:{id}:n is {n}, acknowledged {}", a.exec);
        verify_collections(&mut c, id, a);
        for key in &a.piped {
            assert_eq!(
                bulk(&parse(&c.cmd(&["GET", key]))).as_deref(),
                Some(key.as_str()),
                "acknowledged pipelined SET"
            );
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let acked: Vec<Arc<Mutex<Acked>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    for round in 0..=KILLS {
        let (mut child, addr) = start(dir.path());
        let snapshot: Vec<Acked> = acked.iter().map(|a| a.lock().unwrap().clone()).collect();
        verify(addr, &snapshot);
        if round == KILLS {
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        let acks = Arc::new(AtomicUsize::new(0));
        // The pipelining client's own count: its batches must not make up the others' target.
        let piped_acks = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (acked, acks) = (acked[id].clone(), acks.clone());
                std::thread::spawn(move || write_until_killed(addr, id, round, &acked, &acks))
            })
            .chain(std::iter::once({
                let (acked, piped_acks) = (acked[0].clone(), piped_acks.clone());
                std::thread::spawn(move || pipeline_until_killed(addr, round, &acked, &piped_acks))
            }))
            .collect();
        let target = 5 + rng.below(60) as usize;
        // At least one whole batch, then anywhere in a later one.
        let piped_target = PIPELINE + rng.below(3 * PIPELINE as u64) as usize;
        assert!(
            common::wait_for(Duration::from_secs(30), || acks.load(Ordering::Relaxed) >= target
                && piped_acks.load(Ordering::Relaxed) >= piped_target),
            "round {round}: {target} acknowledgements and {piped_target} pipelined ones within 30 s"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in threads {
            t.join().unwrap();
        }
    }
    let total: usize = acked.iter().map(|a| a.lock().unwrap().sets.len()).sum();
    assert!(total > KILLS * 5, "only {total} acknowledged SETs");
    let piped: usize = acked.iter().map(|a| a.lock().unwrap().piped.len()).sum();
    assert!(piped >= KILLS * PIPELINE, "only {piped} acknowledged pipelined SETs");
    let pushes: usize = acked.iter().map(|a| a.lock().unwrap().pushed.len()).sum();
    assert!(pushes > KILLS, "only {pushes} acknowledged RPUSHes: the collections were hardly exercised");
}

/// SIGTERM (a service manager) and SIGINT (Ctrl-C) both shut the server down cleanly.
#[test]
fn sigterm_and_sigint_shut_down_cleanly_and_keep_the_data() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, addr) = start(dir.path());
        let mut c = RawClient::connect(addr);
        assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "clean exit after kill {signal}: {exit:?}");
        assert_eq!(c.reply(), None, "the connection was closed");
        let (mut child, addr) = start(dir.path());
        assert_eq!(RawClient::connect(addr).cmd(&["GET", "k"]), b"$1\r\nv\r\n");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// A client that pipelines requests and then stops reading its replies leaves the server blocked
/// writing to it; SIGTERM must still end the server (after at most its shutdown grace) with
/// everything acknowledged kept.
#[test]
fn sigterm_ends_the_server_even_with_a_client_that_stopped_reading() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(dir.path());
    let mut c = RawClient::connect(addr);
    let big = "x".repeat(1 << 20);
    assert_eq!(c.cmd(&["SET", "big", &big]), b"+OK\r\n");
    // 256 GETs of 1 MiB: far more than the socket buffers hold. Reading the first bytes shows
    // the server is writing the replies; then this client reads no more.
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    stuck.write_all(&b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(256)).unwrap();
    let mut first = [0u8; 64];
    stuck.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"$1048576\r\nxxx"), "the server started replying");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited.send(child.wait().unwrap()));
    // Bounded, so a hang fails the test instead of stalling CI (the grace is 5 s).
    let exit = exit.recv_timeout(Duration::from_secs(60)).expect("the server exits after SIGTERM");
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
    drop(stuck);
    let (mut child, addr) = start(dir.path());
    assert_eq!(RawClient::connect(addr).cmd(&["STRLEN", "big"]), b":1048576\r\n");
    child.kill().unwrap();
    child.wait().unwrap();
}
