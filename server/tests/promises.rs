//! The server's promises against a hostile client (issue 21, items 1, 2, 3, 5 and 6): a command
//! applies whole or not at all, a connection's requests take effect in order, everything an EXEC
//! reads comes from the state it runs against, a client that pipelines and does not read holds
//! bounded memory, and a scan page costs one page. Each test names its adversary.

mod common;

#[path = "../../tests/common/parking.rs"]
#[allow(unused_imports)]
mod parking;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{encode, parse, TestServer, R};
use ferrocask::testing::SimFs;
use ferrocask::{Options, Store, SyncMode};
use ferrocask_server::Config;
use parking::{ParkOp, ParkingVfs, Release, Rule};

/// Segments of 1 MiB: one batch holds about 1 MiB of records, a request about 400 KiB.
fn small_batches() -> Options {
    Options { segment_bytes: 1 << 20, value_bytes_max: 256 << 10, auto_compact: false, ..Options::default() }
}

fn mset_args(pairs: usize, value: &[u8]) -> Vec<Vec<u8>> {
    let mut args = vec![b"MSET".to_vec()];
    for i in 0..pairs {
        args.push(format!("key{i}").into_bytes());
        args.push(value.to_vec());
    }
    args
}

/// INFO's count of commands the server has run (each counted as it starts).
fn commands_processed(c: &mut common::RawClient) -> u64 {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
    let line = info.lines().find(|l| l.starts_with("total_commands_processed:")).expect("the stat");
    line["total_commands_processed:".len()..].trim().parse().expect("a count")
}

fn dbsize(server: &TestServer) -> Vec<u8> {
    server.raw().cmd(&["DBSIZE"])
}

/// Adversary: an MSET larger than one batch holds. Before: it answered an error and committed
/// most of its keys. Now the request is refused from its header (a request that passes the limit
/// always fits one batch), and nothing is written.
#[test]
fn regression_an_mset_larger_than_one_batch_is_refused_whole() {
    let server = TestServer::start_with(Config::default(), small_batches());
    let value = vec![b'v'; 4000];
    let mut c = server.raw();
    c.send(&mset_args(300, &value)); // 1.2 MB
    let reply = c.reply().expect("an error before the close");
    assert_eq!(reply, b"-ERR Protocol error: request too large\r\n");
    assert_eq!(dbsize(&server), b":0\r\n", "no key of the refused MSET was written");
    let mut d = server.raw();
    assert_eq!(d.cmd(&mset_args(80, &value)), b"+OK\r\n", "an MSET that fits is whole");
    assert_eq!(dbsize(&server), b":80\r\n");
}

/// Adversary: a transaction whose writes outgrow one batch. Before: its MSETs committed in part.
/// Now EXEC is discarded whole with an EXECABORT error.
#[test]
fn regression_an_exec_larger_than_one_batch_writes_nothing() {
    let server = TestServer::start_with(Config::default(), small_batches());
    let value = vec![b'v'; 4000];
    let mut c = server.raw();
    assert_eq!(c.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    for _ in 0..4 {
        assert_eq!(c.cmd(&mset_args(80, &value)), b"+QUEUED\r\n");
    }
    assert_eq!(c.cmd(&["SET", "after", "1"]), b"+QUEUED\r\n");
    let reply = c.cmd(&["EXEC"]);
    assert!(reply.starts_with(b"-EXECABORT Transaction discarded because of: the writes"), "{:?}", parse(&reply));
    assert_eq!(dbsize(&server), b":1\r\n", "only the key written before the EXEC");
    assert_eq!(c.cmd(&["GET", "after"]), b"$-1\r\n");
}

/// Adversary: a command that fails after writing part of its work (MSET whose third key the
/// store refuses). Its earlier writes are undone, alone and inside EXEC, where the other queued
/// commands still apply as in Redis.
#[test]
fn a_command_failing_half_way_leaves_none_of_its_writes() {
    let server = TestServer::start();
    let mut c = server.raw();
    let long_key = vec![b'k'; 5000];
    let bad: Vec<&[u8]> = vec![b"MSET", b"a", b"1", b"b", b"2", &long_key, b"3"];
    assert_eq!(c.cmd(&bad), b"-ERR key is longer than 4096 bytes\r\n");
    assert_eq!(c.cmd(&["EXISTS", "a", "b"]), b":0\r\n", "nothing of the failed MSET");
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "x", "1"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&bad), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["SET", "y", "2"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), b"*3\r\n+OK\r\n-ERR key is longer than 4096 bytes\r\n+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", "a", "b", "x", "y"]), b":2\r\n", "x and y, not a or b");
}

/// Adversary: a pipeline that writes, flushes and counts in one write to the socket. Before:
/// FLUSHDB listed the keys before this connection's queued SETs were published, so DBSIZE said
/// 2 and the keys survived, on disk too. And a write pipelined after FLUSHDB must survive it.
#[test]
fn regression_a_pipelined_flushdb_takes_effect_in_order() {
    let server = TestServer::start();
    let mut c = server.raw();
    for round in 0..20 {
        let mut pipeline = Vec::new();
        for cmd in
            [&["SET", "pa", "1"][..], &["SET", "pb", "2"], &["FLUSHDB"], &["DBSIZE"], &["SET", "pc", "3"], &["DBSIZE"]]
        {
            pipeline.extend(encode(cmd));
        }
        c.send_raw(&pipeline);
        let replies: Vec<Vec<u8>> = (0..6).map(|_| c.reply().unwrap()).collect();
        let want: Vec<&[u8]> = vec![b"+OK\r\n", b"+OK\r\n", b"+OK\r\n", b":0\r\n", b"+OK\r\n", b":1\r\n"];
        assert_eq!(replies, want, "round {round}");
    }
}

/// Adversary: another client's write still in flight (its group parked at the sync) while an
/// EXEC that lists keys is queued. Before: KEYS, DBSIZE and SCAN in EXEC came from the keys
/// published when EXEC arrived, while EXISTS saw the write: `[1, [], 0]`. Now all of EXEC reads
/// the state it runs against.
#[test]
fn regression_exec_key_listings_agree_with_its_reads() {
    let dir = tempfile::tempdir().unwrap();
    let parking = ParkingVfs::new(SimFs::new());
    let options = Options { sync: SyncMode::Always, auto_compact: false, ..Options::default() };
    let store = Arc::new(Store::open_on(parking.clone(), dir.path(), options).unwrap());
    let server = TestServer::start_on(Config::default(), store, dir);
    let mut writer = server.raw();
    let mut txn = server.raw();
    let mut observer = server.raw();
    let gate = parking.arm(Rule::new(ParkOp::Sync, ".seg"));
    writer.send(&["SET", "k", "v"]);
    assert!(gate.wait_parked(), "the SET's group reached its sync");
    assert_eq!(txn.cmd(&["MULTI"]), b"+OK\r\n");
    for cmd in [&["EXISTS", "k"][..], &["KEYS", "*"], &["DBSIZE"], &["SCAN", "0", "COUNT", "1000"], &["RANDOMKEY"]] {
        assert_eq!(txn.cmd(cmd), b"+QUEUED\r\n");
    }
    let before = commands_processed(&mut observer);
    txn.send(&["EXEC"]);
    // EXEC is handled (and its transaction queued) once the server has counted it.
    assert!(common::wait_for(Duration::from_secs(20), || commands_processed(&mut observer) > before + 1));
    gate.release(Release::Proceed);
    assert_eq!(writer.reply().unwrap(), b"+OK\r\n");
    let exec = parse(&txn.reply().unwrap());
    let k = || R::Bulk(b"k".to_vec());
    let want = R::Array(vec![
        R::Int(1),
        R::Array(vec![k()]),
        R::Int(1),
        R::Array(vec![R::Bulk(b"0".to_vec()), R::Array(vec![k()])]),
        k(),
    ]);
    assert_eq!(exec, want);
}

/// Adversary: a client that pipelines writes returning large values (GETEX of a 256 KiB value,
/// 30-byte requests) and never reads a reply. Before: every request of one read (16 KiB, about
/// 500 of them) was run with its reply waiting in line unflushed (1.17 GB for 600 GETEX of
/// 1 MB). Now the line is settled and written once what it may carry passes the output bound,
/// so the server stops reading this client after a few: counted by the commands it processed.
#[test]
fn regression_a_client_that_does_not_read_holds_bounded_memory() {
    let server = TestServer::start();
    let value = vec![b'v'; 256 << 10];
    let mut setup = server.raw();
    assert_eq!(setup.cmd(&[&b"SET"[..], b"big", &value]), b"+OK\r\n");
    let before = commands_processed(&mut setup);
    let mut hostile = std::net::TcpStream::connect(server.addr).unwrap();
    // A write that cannot finish in this long means the server stopped reading this client and
    // the socket buffers are full (it only decides when to stop sending; the assertions are on
    // counts).
    hostile.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let batch: Vec<u8> = (0..1000).flat_map(|_| encode(&["GETEX", "big"])).collect();
    let batches = 2000; // 50 MB of requests at most
    let sent = (0..batches).take_while(|_| hostile.write_all(&batch).is_ok()).count();
    assert!(sent < batches, "the server went on reading requests whose replies it could not send");
    let handled = commands_processed(&mut setup) - before - 1;
    assert!(handled <= 64, "{handled} GETEX handled: {} MiB of replies held for a client that reads none", handled / 4);
    drop(hostile);
    assert_eq!(setup.cmd(&["STRLEN", "big"]), format!(":{}\r\n", 256 << 10).into_bytes());
}

/// Adversary: an MGET whose values exceed the snapshot limit (8 values of 1 MiB). Streamed value
/// by value; the reply is whole and in order.
#[test]
fn an_mget_larger_than_its_snapshot_limit_is_streamed_whole() {
    let server = TestServer::start();
    let mut c = server.raw();
    let mut args: Vec<Vec<u8>> = vec![b"MGET".to_vec()];
    for i in 0..8u8 {
        let key = format!("m{i}").into_bytes();
        assert_eq!(c.cmd(&[&b"SET"[..], &key, &vec![i; 1 << 20]]), b"+OK\r\n");
        args.push(key);
        args.push(b"missing".to_vec());
    }
    let R::Array(items) = parse(&c.cmd(&args)) else { panic!("an array") };
    assert_eq!(items.len(), 16);
    for (i, pair) in items.chunks(2).enumerate() {
        assert_eq!(pair[0], R::Bulk(vec![i as u8; 1 << 20]));
        assert_eq!(pair[1], R::Null);
    }
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n", "the connection is in step");
}

/// Adversary: a full SCAN with a small COUNT over many keys while another client writes. Every
/// key present throughout is returned, and no page returns more than a few stripes' keys (a page
/// costs the index entries of the stripes it covers; the store's own test counts them).
#[test]
fn a_full_scan_returns_every_key_with_pages_of_a_few_stripes() {
    let server = TestServer::start();
    let mut c = server.raw();
    let n = 20_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut args = vec![b"MSET".to_vec()];
        for i in chunk {
            args.push(format!("s{i}").into_bytes());
            args.push(b"v".to_vec());
        }
        assert_eq!(c.cmd(&args), b"+OK\r\n");
    }
    let mut writer = server.raw();
    let (mut cursor, mut seen, mut largest, mut pages) = (b"0".to_vec(), std::collections::HashSet::new(), 0, 0);
    loop {
        let R::Array(reply) = parse(&c.cmd(&[&b"SCAN"[..], &cursor, b"COUNT", b"10"])) else { panic!() };
        let (R::Bulk(next), R::Array(keys)) = (&reply[0], &reply[1]) else { panic!() };
        largest = largest.max(keys.len());
        pages += 1;
        for k in keys {
            let R::Bulk(k) = k else { panic!() };
            seen.insert(k.clone());
        }
        assert_eq!(writer.cmd(&["SET", &format!("new{pages}"), "v"]), b"+OK\r\n");
        cursor = next.clone();
        if cursor == b"0" {
            break;
        }
    }
    for i in 0..n {
        assert!(seen.contains(format!("s{i}").as_bytes()), "s{i} missing");
    }
    assert!(largest < n / 20, "a page of {largest} keys");
    assert!(pages > 20, "{pages} pages");
}
