//! The blocking pops with several connections: who is woken, in which order, by what, and what
//! a client that leaves takes with it (nothing). Every wait is on a condition with a bounded
//! limit (INFO's `blocked_clients`, a reply), never a sleep; no test asserts a duration.
//! `agrees_with_redis` compares the deterministic replies (errors, immediate pops, MULTI) with a
//! real redis-server byte for byte.

mod common;

use std::time::Duration;

use common::{parse, wait_for, RawClient, RedisServer, TestServer, R};

/// Generous bound on conditions that hold within milliseconds on an idle machine.
const WAIT: Duration = Duration::from_secs(20);

fn bulk(s: &str) -> R {
    R::Bulk(s.as_bytes().to_vec())
}

fn array(items: &[&str]) -> R {
    R::Array(items.iter().map(|s| bulk(s)).collect())
}

/// INFO's `blocked_clients`.
fn blocked(c: &mut RawClient) -> usize {
    let R::Bulk(info) = parse(&c.cmd(&["INFO", "clients"])) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8(info).unwrap();
    let line = info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).expect("blocked_clients in INFO");
    line.trim().parse().unwrap()
}

/// Waits until `n` clients are blocked, so the next one queues behind them.
fn until_blocked(c: &mut RawClient, n: usize) {
    assert!(wait_for(WAIT, || blocked(c) == n), "{n} clients blocked");
}

/// Sends `args` on a new connection and waits until it is the `n`th blocked client.
fn block(server: &TestServer, watcher: &mut RawClient, n: usize, args: &[&str]) -> RawClient {
    let mut c = server.raw();
    c.send(args);
    until_blocked(watcher, n);
    c
}

fn reply(c: &mut RawClient) -> R {
    parse(&c.reply().expect("a reply"))
}

#[test]
fn a_pop_possible_now_answers_as_the_non_blocking_command() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "q", "a", "b", "c", "d"]);
    assert_eq!(parse(&c.cmd(&["BLPOP", "none", "q", "0"])), array(&["q", "a"]));
    assert_eq!(parse(&c.cmd(&["BRPOP", "q", "1.5"])), array(&["q", "d"]));
    assert_eq!(parse(&c.cmd(&["BRPOPLPUSH", "q", "r", "0"])), bulk("c"));
    assert_eq!(parse(&c.cmd(&["BLMOVE", "q", "r", "LEFT", "RIGHT", "0"])), bulk("b"));
    assert_eq!(parse(&c.cmd(&["LRANGE", "r", "0", "-1"])), array(&["c", "b"]));
    assert_eq!(
        parse(&c.cmd(&["BLMPOP", "0", "2", "none", "r", "RIGHT", "COUNT", "5"])),
        R::Array(vec![bulk("r"), array(&["b", "c"])])
    );
    c.cmd(&["ZADD", "z", "1", "one", "2", "two"]);
    assert_eq!(parse(&c.cmd(&["BZPOPMIN", "z", "0"])), array(&["z", "one", "1"]));
    assert_eq!(parse(&c.cmd(&["BZPOPMAX", "z", "0"])), array(&["z", "two", "2"]));
    assert_eq!(blocked(&mut c), 0);
}

#[test]
fn a_push_from_another_connection_wakes_the_blocked_client_and_the_element_is_gone() {
    let server = TestServer::start();
    let mut other = server.raw();
    let mut waiting = block(&server, &mut other, 1, &["BLPOP", "q", "0"]);
    assert_eq!(parse(&other.cmd(&["RPUSH", "q", "x"])), R::Int(1));
    assert_eq!(reply(&mut waiting), array(&["q", "x"]));
    assert_eq!(parse(&other.cmd(&["LLEN", "q"])), R::Int(0));
    until_blocked(&mut other, 0);
    // The connection serves requests again once served.
    assert_eq!(parse(&waiting.cmd(&["PING"])), R::Simple(b"PONG".to_vec()));
}

#[test]
fn waiters_are_served_in_arrival_order_one_element_each() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut first = block(&server, &mut pusher, 1, &["BRPOP", "q", "0"]);
    let mut second = block(&server, &mut pusher, 2, &["BLPOP", "other", "q", "0"]);
    let mut third = block(&server, &mut pusher, 3, &["BRPOP", "q", "0"]);
    // One element: the oldest waiter only.
    pusher.cmd(&["LPUSH", "q", "a"]);
    assert_eq!(reply(&mut first), array(&["q", "a"]));
    until_blocked(&mut pusher, 2);
    // Two elements at once: the two left, oldest first.
    pusher.cmd(&["RPUSH", "q", "b", "c"]);
    assert_eq!(reply(&mut second), array(&["q", "b"]));
    assert_eq!(reply(&mut third), array(&["q", "c"]));
    until_blocked(&mut pusher, 0);
    assert_eq!(parse(&pusher.cmd(&["EXISTS", "q"])), R::Int(0));
}

#[test]
fn a_timeout_answers_a_nil_array_in_resp2_and_resp3() {
    let server = TestServer::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["BLPOP", "q", "0.1"]), b"*-1\r\n");
    assert_eq!(c.cmd(&["BLMOVE", "q", "r", "LEFT", "LEFT", "0.05"]), b"*-1\r\n");
    assert_eq!(c.cmd(&["BZPOPMIN", "z", "0.05"]), b"*-1\r\n");
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BRPOP", "q", "0.1"]), b"_\r\n");
    assert_eq!(blocked(&mut c), 0);
}

#[test]
fn timeout_zero_waits_until_a_push_comes() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut waiting = block(&server, &mut pusher, 1, &["BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "3"]);
    pusher.cmd(&["RPUSH", "b", "1", "2"]);
    assert_eq!(reply(&mut waiting), R::Array(vec![bulk("b"), array(&["1", "2"])]));
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing_and_the_next_waiter_gets_the_element() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let gone = block(&server, &mut pusher, 1, &["BLPOP", "q", "0"]);
    let mut next = block(&server, &mut pusher, 2, &["BLPOP", "q", "0"]);
    drop(gone);
    until_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "q", "x"]);
    assert_eq!(reply(&mut next), array(&["q", "x"]));
    assert_eq!(parse(&pusher.cmd(&["LLEN", "q"])), R::Int(0));
}

#[test]
fn blmove_moves_the_woken_element_to_the_other_list() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut waiting = block(&server, &mut pusher, 1, &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
    pusher.cmd(&["RPUSH", "dst", "old"]);
    pusher.cmd(&["RPUSH", "src", "x"]);
    assert_eq!(reply(&mut waiting), bulk("x"));
    assert_eq!(parse(&pusher.cmd(&["LRANGE", "dst", "0", "-1"])), array(&["x", "old"]));
    assert_eq!(parse(&pusher.cmd(&["EXISTS", "src"])), R::Int(0));
}

#[test]
fn bzpopmin_is_woken_by_zadd_and_a_list_waiter_on_the_key_is_skipped() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut list_waiter = block(&server, &mut pusher, 1, &["BLPOP", "k", "0"]);
    let mut zset_waiter = block(&server, &mut pusher, 2, &["BZPOPMIN", "k", "0"]);
    pusher.cmd(&["ZADD", "k", "2.5", "m"]);
    assert_eq!(reply(&mut zset_waiter), array(&["k", "m", "2.5"]));
    until_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "k", "e"]);
    assert_eq!(reply(&mut list_waiter), array(&["k", "e"]));
}

#[test]
fn a_push_inside_exec_wakes_the_waiter() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut waiting = block(&server, &mut pusher, 1, &["BRPOP", "q", "0"]);
    pusher.cmd(&["MULTI"]);
    pusher.cmd(&["SET", "s", "1"]);
    pusher.cmd(&["RPUSH", "q", "x"]);
    assert_eq!(parse(&pusher.cmd(&["EXEC"])), R::Array(vec![R::Simple(b"OK".to_vec()), R::Int(1)]));
    assert_eq!(reply(&mut waiting), array(&["q", "x"]));
}

#[test]
fn inside_multi_a_blocking_pop_never_blocks() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.cmd(&["MULTI"]);
    for args in [
        &["BLPOP", "q", "0"][..],
        &["BLMOVE", "q", "r", "LEFT", "LEFT", "0"],
        &["BZPOPMAX", "z", "0"],
        &["RPUSH", "q", "a"],
        &["BLPOP", "q", "0"],
    ] {
        assert_eq!(c.cmd(args), b"+QUEUED\r\n");
    }
    assert_eq!(c.cmd(&["EXEC"]), b"*5\r\n*-1\r\n$-1\r\n*-1\r\n:1\r\n*2\r\n$1\r\nq\r\n$1\r\na\r\n");
}

#[test]
fn client_unblock_ends_the_wait_with_a_nil_or_an_error() {
    let server = TestServer::start();
    let mut other = server.raw();
    let mut waiting = server.raw();
    let R::Int(id) = parse(&waiting.cmd(&["CLIENT", "ID"])) else { panic!("CLIENT ID") };
    let id = id.to_string();
    waiting.send(&["BLPOP", "q", "0"]);
    until_blocked(&mut other, 1);
    assert_eq!(parse(&other.cmd(&["CLIENT", "UNBLOCK", &id])), R::Int(1));
    assert_eq!(waiting.reply().unwrap(), b"*-1\r\n");
    waiting.send(&["BZPOPMIN", "z", "0"]);
    until_blocked(&mut other, 1);
    assert_eq!(parse(&other.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"])), R::Int(1));
    assert_eq!(waiting.reply().unwrap(), b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(parse(&other.cmd(&["CLIENT", "UNBLOCK", &id])), R::Int(0));
}

/// The replies that cannot block, compared with a real redis-server byte for byte: errors
/// (timeouts, arity, syntax, types) and immediate pops, in RESP2 and RESP3.
#[test]
fn agrees_with_redis() {
    let server = TestServer::start();
    let redis = RedisServer::start();
    let script: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b", "c", "d", "e"],
        &["ZADD", "z", "1", "x", "2.5", "y", "3", "w"],
        &["SET", "s", "v"],
        &["BLPOP", "l", "-1"],
        &["BLPOP", "l", "abc"],
        &["BLPOP", "l", "nan"],
        &["BLPOP", "l", "inf"],
        &["BLPOP", "s", "abc"],
        &["BLPOP", "s", "0"],
        &["BLPOP", "nokey", "s", "l", "0"],
        &["BLPOP", "l"],
        &["BLPOP", "nokey", "l", "0"],
        &["BRPOP", "l", "0.5"],
        &["BRPOPLPUSH", "l", "s", "0"],
        &["BRPOPLPUSH", "l", "l2", "-2"],
        &["BRPOPLPUSH", "l", "l2", "0"],
        &["BLMOVE", "l", "l2", "UP", "LEFT", "0"],
        &["BLMOVE", "l", "l2", "LEFT", "LEFT", "-1"],
        &["BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"],
        &["BLMOVE", "s", "l2", "LEFT", "RIGHT", "0"],
        &["BLMPOP", "-1", "1", "l", "LEFT"],
        // Found by the differential generator: BLMPOP checks LMPOP's arguments before its timeout.
        &["BLMPOP", "x", "x", "l", "RIGHT"],
        &["BLMPOP", "nan", "0", "l", "RIGHT"],
        &["BLMPOP", "-1", "1", "l", "UP"],
        &["BLMPOP", "x", "1", "l", "LEFT", "COUNT", "0"],
        &["BLMPOP", "0", "0", "l", "LEFT"],
        &["BLMPOP", "0", "1", "l", "UP"],
        &["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "0"],
        &["BLMPOP", "0", "3", "l", "LEFT"],
        &["BLMPOP", "0", "2", "s", "l", "LEFT"],
        &["BLMPOP", "0", "2", "nokey", "l2", "RIGHT", "COUNT", "10"],
        &["BZPOPMIN", "z", "-0.5"],
        &["BZPOPMIN", "s", "0"],
        &["BZPOPMIN", "nokey", "z", "0"],
        &["BZPOPMAX", "z", "0"],
        &["BZPOPMAX", "z"],
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["BRPOPLPUSH", "nokey", "l", "0"],
        &["BLMOVE", "nokey", "l", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "nokey", "LEFT"],
        &["BZPOPMIN", "nokey", "0"],
        &["BLPOP", "l", "0"],
        &["EXEC"],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "abc"],
        &["CLIENT", "UNBLOCK", "1", "MAYBE"],
        &["HELLO", "3"],
        &["ZADD", "z", "7", "q"],
        &["BZPOPMIN", "z", "0"],
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["EXEC"],
    ];
    let mut ours = server.raw();
    let mut theirs = RawClient::connect(redis.addr());
    for args in script {
        let (a, b) = (ours.cmd(args), theirs.cmd(args));
        if args[0] == "HELLO" {
            continue;
        }
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "{args:?}");
    }
}

#[test]
fn rename_onto_the_key_wakes_the_waiter() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut waiting = block(&server, &mut pusher, 1, &["BLPOP", "dst", "0"]);
    pusher.cmd(&["RPUSH", "src", "x", "y"]);
    pusher.cmd(&["RENAME", "src", "dst"]);
    assert_eq!(reply(&mut waiting), array(&["dst", "x"]));
    assert_eq!(parse(&pusher.cmd(&["LRANGE", "dst", "0", "-1"])), array(&["y"]));
}

/// Adversary: a pipeline around a blocking pop. The replies before it come out while it waits,
/// the requests after it run once it answers, in order; a pop refused at once (its timeout)
/// takes no other reply's place.
#[test]
fn a_pipeline_around_a_blocking_pop_keeps_its_replies_in_order() {
    let server = TestServer::start();
    let mut pusher = server.raw();
    let mut c = server.raw();
    let mut pipeline = common::encode(&["RPUSH", "other", "1"]);
    pipeline.extend(common::encode(&["BLPOP", "q", "-1"]));
    pipeline.extend(common::encode(&["BLPOP", "q", "0"]));
    pipeline.extend(common::encode(&["ECHO", "after"]));
    c.send_raw(&pipeline);
    assert_eq!(reply(&mut c), R::Int(1));
    assert_eq!(reply(&mut c), R::Error(b"ERR timeout is negative".to_vec()));
    until_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", "q", "x"]);
    assert_eq!(reply(&mut c), array(&["q", "x"]));
    assert_eq!(reply(&mut c), bulk("after"));
}

/// Adversary: a server shutting down with a client blocked for ever. The wait ends and the
/// connection closes (the shutdown does not wait out its grace period on it).
#[test]
fn a_shutdown_ends_a_wait_that_has_no_timeout() {
    let server = TestServer::start();
    let mut watcher = server.raw();
    let mut waiting = block(&server, &mut watcher, 1, &["BLPOP", "q", "0"]);
    drop(watcher);
    drop(server);
    assert_eq!(waiting.reply(), None, "closed without a reply");
}

/// Adversary: non-blocking LPOPs racing the woken clients for every element. Each element goes
/// to exactly one client (a blocked one, the racer, or stays in the list), and every blocked
/// client is served while elements keep coming.
#[test]
fn every_element_is_popped_once_with_a_racing_lpop() {
    const WAITERS: usize = 6;
    let server = TestServer::start();
    let mut pusher = server.raw();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for n in 0..WAITERS {
        let mut c = block(&server, &mut pusher, n + 1, &["BLPOP", "q", "0"]);
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || tx.send(reply(&mut c)).unwrap()));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let (stop, mut c) = (stop.clone(), server.raw());
        std::thread::spawn(move || {
            let mut taken = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let R::Bulk(e) = parse(&c.cmd(&["LPOP", "q"])) {
                    taken.push(e);
                }
            }
            taken
        })
    };
    let mut pushed = Vec::new();
    let mut served = Vec::new();
    while served.len() < WAITERS {
        assert!(pushed.len() < 100_000, "blocked clients left waiting while elements came");
        let e = format!("e{}", pushed.len());
        pusher.cmd(&["RPUSH", "q", &e]);
        pushed.push(e.into_bytes());
        served.extend(rx.try_iter());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut got: Vec<Vec<u8>> = racer.join().unwrap();
    for r in served {
        let R::Array(parts) = r else { panic!("BLPOP's reply: {r:?}") };
        let R::Bulk(e) = &parts[1] else { panic!("an element") };
        got.push(e.clone());
    }
    let R::Array(left) = parse(&pusher.cmd(&["LRANGE", "q", "0", "-1"])) else { panic!("LRANGE") };
    got.extend(left.into_iter().map(|r| match r {
        R::Bulk(e) => e,
        other => panic!("{other:?}"),
    }));
    got.sort();
    pushed.sort();
    assert_eq!(got, pushed, "each element popped once or still there");
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(blocked(&mut pusher), 0);
}

/// Adversary: CLIENT KILL of a blocked client. Its connection closes, it leaves the registry,
/// and a push afterwards stays in the list.
#[test]
fn a_killed_blocked_client_leaves_the_registry_and_takes_nothing() {
    let server = TestServer::start();
    let mut other = server.raw();
    let mut waiting = server.raw();
    let R::Int(id) = parse(&waiting.cmd(&["CLIENT", "ID"])) else { panic!("CLIENT ID") };
    waiting.send(&["BLPOP", "q", "0"]);
    until_blocked(&mut other, 1);
    assert_eq!(parse(&other.cmd(&["CLIENT", "KILL", "ID", &id.to_string()])), R::Int(1));
    assert_eq!(waiting.reply(), None, "closed without a reply");
    until_blocked(&mut other, 0);
    other.cmd(&["RPUSH", "q", "x"]);
    assert_eq!(parse(&other.cmd(&["LRANGE", "q", "0", "-1"])), array(&["x"]));
}
