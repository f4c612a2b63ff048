//! Hashes and sets on the collection layer (issue 23): what the differential test does not
//! reach. Each test names the adversary it plays.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{parse, RawClient, TestServer, R};
use ferrocask::{Options, Store};

/// Runs inline commands, one a line, as one client on `store`; the replies, parsed.
fn run(store: &Arc<Store>, lines: &[&str]) -> Vec<R> {
    let input: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    let out = ferrocask_server::fuzzing::run_bytes(store.clone(), input.as_bytes());
    let mut replies = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let len = common::reply_len(&out[at..]).expect("whole replies");
        replies.push(parse(&out[at..at + len]));
        at += len;
    }
    assert_eq!(replies.len(), lines.len(), "one reply per command: {replies:?}");
    replies
}

fn one(store: &Arc<Store>, line: &str) -> R {
    run(store, &[line]).pop().unwrap()
}

fn bulk(s: &str) -> R {
    R::Bulk(s.as_bytes().to_vec())
}

fn bulks(items: &[&str]) -> R {
    R::Array(items.iter().map(|s| bulk(s)).collect())
}

/// A reply's elements, sorted (member order is the slot order, not the insertion order).
fn sorted(reply: R) -> Vec<R> {
    let R::Array(mut items) = reply else { panic!("an array: {reply:?}") };
    items.sort();
    items
}

/// The store as `ferrocask serve` opens it: the collections' prefixes ordered.
fn open(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open_with(dir, common::ordered(Options::default())).unwrap())
}

/// A store opened without the ordered prefixes (a caller's own store): the views fall back to
/// listing every key.
fn open_unordered(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open_with(dir, Options::default()).unwrap())
}

/// Adversary: a restart. Every member written before it is there after it, and the counts and
/// the generation counter with them (a set created after the restart does not see old members).
#[test]
fn collections_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Written without the ordered prefixes, read with them: the ordered index is built at
        // open from whatever the store holds.
        let store = open_unordered(dir.path());
        run(
            &store,
            &[
                "HSET h a 1 b 2 c 3",
                "SADD s x y z",
                "HDEL h b",
                "SADD gone 1",
                "DEL gone",
                "ZADD zz 3 c 1 a 2 b",
                "RENAME zz z",
                "ZADD old 1 x",
                "DEL old",
            ],
        );
    }
    let store = open(dir.path());
    assert_eq!(sorted(one(&store, "HGETALL h")), sorted(bulks(&["a", "1", "c", "3"])).to_vec());
    assert_eq!(one(&store, "HLEN h"), R::Int(2));
    assert_eq!(sorted(one(&store, "SMEMBERS s")), sorted(bulks(&["x", "y", "z"])));
    assert_eq!(one(&store, "SADD gone 2"), R::Int(1));
    assert_eq!(one(&store, "SMEMBERS gone"), bulks(&["2"]), "a new incarnation after the restart");
    assert_eq!(one(&store, "ZRANGE z 0 -1"), bulks(&["a", "b", "c"]), "RENAME moved the score index too");
    assert_eq!(run(&store, &["ZADD old 5 y", "ZRANGEBYSCORE old -inf +inf"])[1], bulks(&["y"]));
    assert_eq!(one(&store, "DBSIZE"), R::Int(5));
    // The core's ordered index serves the ranges (no fallback): its count of member records.
    let members = ferrocask_server::ORDERED_PREFIXES[0];
    assert_eq!(store.count_prefix(members).unwrap(), 2 + 3 + 1 + 3 + 1, "h: 2 fields, s: 3, gone: 1, z: 3, old: 1");
    store.check_ordered_index();
}

/// Adversary: an EXEC whose writes span two collections and outgrow one batch. Nothing of it
/// is kept; one that fits is kept whole.
#[test]
fn exec_over_two_collections_is_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::ordered(Options { segment_bytes: 64 << 10, preallocate_bytes: 0, ..Options::default() });
    let store = Arc::new(Store::open_with(dir.path(), options).unwrap());
    let big = "v".repeat(20_000);
    let replies = run(
        &store,
        &[
            "MULTI",
            &format!("HSET h a {big}"),
            "SADD s m",
            &format!("HSET h b {big}"),
            &format!("HSET h c {big}"),
            &format!("HSET h d {big}"),
            &format!("HSET h e {big}"),
            "EXEC",
            "EXISTS h s",
        ],
    );
    assert!(matches!(&replies[7], R::Error(e) if e.starts_with(b"EXECABORT")), "{:?}", replies[7]);
    assert_eq!(replies[8], R::Int(0), "nothing of the discarded EXEC is kept");
    let replies = run(&store, &["MULTI", "HSET h a 1", "SADD s m n", "SREM s m", "EXEC", "HGETALL h", "SMEMBERS s"]);
    assert_eq!(replies[4], R::Array(vec![R::Int(1), R::Int(2), R::Int(1)]));
    assert_eq!(replies[5], bulks(&["a", "1"]));
    assert_eq!(replies[6], bulks(&["n"]));
}

/// Adversary: a key deleted and written again, with few members (deleted with the key) and
/// with more than `INLINE_DROP_MEMBERS_MAX` (left behind as orphans). The new incarnation
/// never sees the old members, and DBSIZE, KEYS and SCAN never show the orphans.
#[test]
fn a_key_deleted_and_recreated_does_not_resurrect_old_members() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(run(&store, &["HSET h a 1 b 2", "DEL h", "HSET h c 3", "HGETALL h"])[3], bulks(&["c", "3"]));
    let chunk = |from: usize| (from..from + 400).map(|i| format!("m{i}")).collect::<Vec<_>>().join(" ");
    let (a, b, c) = (chunk(0), chunk(400), chunk(800));
    let replies = run(
        &store,
        &[&format!("SADD s {a}"), &format!("SADD s {b}"), &format!("SADD s {c}"), "SCARD s", "DEL s", "SADD s x"],
    );
    assert_eq!(replies[3], R::Int(1200));
    assert_eq!(one(&store, "SMEMBERS s"), bulks(&["x"]));
    assert_eq!(one(&store, "SCARD s"), R::Int(1));
    assert_eq!(one(&store, "SISMEMBER s m5"), R::Int(0));
    assert_eq!(one(&store, "DBSIZE"), R::Int(2));
    assert_eq!(sorted(one(&store, "KEYS *")), vec![bulk("h"), bulk("s")]);
    let R::Array(scan) = one(&store, "SCAN 0 COUNT 100000") else { panic!() };
    assert_eq!(sorted(scan[1].clone()), vec![bulk("h"), bulk("s")]);
    // SET over a set replaces it, and a set made again starts empty.
    assert_eq!(run(&store, &["SET s str", "TYPE s", "DEL s", "SADD s y", "SMEMBERS s"])[4], bulks(&["y"]));
}

/// Adversary: time. A hash whose TTL passed is gone whole (one meta record expired), and an
/// HSET after it starts an empty hash.
#[test]
fn an_expired_hash_starts_empty_when_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let replies = run(&store, &["HSET h a 1 b 2", "PEXPIRE h 1", "TTL h", "PTTL h"]);
    assert_eq!(replies[1], R::Int(1));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let replies = run(&store, &["EXISTS h", "HGET h a", "HSET h c 3", "HGETALL h", "TTL h", "HLEN h"]);
    assert_eq!(replies, vec![R::Int(0), R::Null, R::Int(1), bulks(&["c", "3"]), R::Int(-1), R::Int(1)]);
    let replies = run(&store, &["EXPIRE h 100", "TTL h", "PERSIST h", "TTL h", "EXPIRE h 0", "EXISTS h"]);
    assert_eq!(replies, vec![R::Int(1), R::Int(100), R::Int(1), R::Int(-1), R::Int(1), R::Int(0)]);
}

/// Adversary: a client naming the collection layer's own records. It is refused before the
/// command runs, whatever the command.
#[test]
fn commands_naming_internal_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, &["HSET h a 1"]);
    for args in [
        &[&b"GET"[..], b"\xff\xfdg"][..],
        &[b"HGETALL", b"\xff\xfdmh"],
        &[b"SET", b"\xff\xfdx", b"v"],
        &[b"DEL", b"k", b"\xff\xfdmh"],
        &[b"RENAME", b"h", b"\xff\xfdmz"],
    ] {
        let mut input = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            input.extend_from_slice(a);
            input.extend_from_slice(b"\r\n");
        }
        let out = ferrocask_server::fuzzing::run_bytes(store.clone(), &input);
        assert!(
            out.starts_with(b"-ERR keys that start with the bytes \\xff\\xfd"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    assert_eq!(one(&store, "HGETALL h"), bulks(&["a", "1"]), "the hash is untouched");
}

/// TYPE, SCAN ... TYPE, KEYS and DBSIZE over every type; WRONGTYPE both ways.
#[test]
fn every_key_command_sees_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    run(&store, &["SET str v", "HSET h f v", "SADD s m"]);
    assert_eq!(
        run(&store, &["TYPE str", "TYPE h", "TYPE s", "TYPE none"]),
        vec![
            R::Simple(b"string".to_vec()),
            R::Simple(b"hash".to_vec()),
            R::Simple(b"set".to_vec()),
            R::Simple(b"none".to_vec()),
        ]
    );
    for (t, want) in [("hash", "h"), ("set", "s"), ("string", "str"), ("HASH", "h")] {
        let R::Array(page) = one(&store, &format!("SCAN 0 COUNT 1000 TYPE {t}")) else { panic!() };
        assert_eq!(page[1], bulks(&[want]), "SCAN TYPE {t}");
    }
    assert_eq!(sorted(one(&store, "KEYS *")), vec![bulk("h"), bulk("s"), bulk("str")]);
    assert_eq!(one(&store, "DBSIZE"), R::Int(3));
    let wrongtype = R::Error(b"WRONGTYPE Operation against a key holding the wrong kind of value".to_vec());
    for line in ["GET h", "INCR s", "APPEND h x", "HGET str f", "SADD h m", "SMEMBERS h", "HLEN s"] {
        assert_eq!(one(&store, line), wrongtype, "{line}");
    }
    assert_eq!(
        run(&store, &["RENAME h h2", "HGET h2 f", "EXISTS h", "COPY s s2", "SMEMBERS s2"])[1..],
        [bulk("v"), R::Int(0), R::Int(1), bulks(&["m"])]
    );
    assert_eq!(one(&store, "FLUSHDB"), R::Simple(b"OK".to_vec()));
    assert_eq!(one(&store, "DBSIZE"), R::Int(0));
    assert_eq!(one(&store, "SCARD s2"), R::Int(0));
}

/// Adversary: another client writes a WATCHed hash, even a field to the value it had (Redis
/// counts that as a change), or a WATCHed set: the EXEC aborts. A SADD that adds nothing is no
/// change (as in Redis).
#[test]
fn watch_sees_writes_to_collections() {
    let server = TestServer::start();
    let (mut a, mut b) = (server.raw(), server.raw());
    let exec_after = |a: &mut RawClient, b: &mut RawClient, key: &str, write: &[&str]| {
        a.cmd(&["WATCH", key]);
        parse(&b.cmd(write));
        a.cmd(&["MULTI"]);
        a.cmd(&["PING"]);
        parse(&a.cmd(&["EXEC"]))
    };
    parse(&a.cmd(&["HSET", "h", "f", "v"]));
    parse(&a.cmd(&["SADD", "s", "m"]));
    assert_eq!(exec_after(&mut a, &mut b, "h", &["HSET", "h", "f", "v"]), R::Null);
    assert_eq!(exec_after(&mut a, &mut b, "h", &["HDEL", "h", "nope"]), R::Array(vec![R::Simple(b"PONG".to_vec())]));
    assert_eq!(exec_after(&mut a, &mut b, "s", &["SADD", "s", "n"]), R::Null);
    assert_eq!(exec_after(&mut a, &mut b, "s", &["SADD", "s", "n"]), R::Array(vec![R::Simple(b"PONG".to_vec())]));
    assert_eq!(exec_after(&mut a, &mut b, "s", &["EXPIRE", "s", "100"]), R::Null);
}

/// SPOP draws from the transaction's time, the key and the set's stamp (so replicas agree):
/// pops in the same millisecond still differ, and never repeat a member.
#[test]
fn spop_is_deterministic_and_pops_each_member_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    run(&store, &[&format!("SADD s {}", members.join(" "))]);
    let mut popped = Vec::new();
    for _ in 0..10 {
        let R::Array(items) = one(&store, "SPOP s 4") else { panic!() };
        popped.extend(items);
        let R::Bulk(m) = one(&store, "SPOP s") else { panic!() };
        popped.push(R::Bulk(m));
    }
    assert_eq!(one(&store, "SCARD s"), R::Int(0));
    popped.sort();
    popped.dedup();
    assert_eq!(popped.len(), 50, "every member popped once");
    let R::Array(draws) = one(&store, "SRANDMEMBER nope -3") else { panic!() };
    assert!(draws.is_empty());
}

/// Lists keep their order through pushes and pops at both ends, inserts and removals in the
/// middle (which rewrite one side), trims, moves and a restart.
#[test]
fn lists_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let replies = run(
            &store,
            &[
                "RPUSH l b c d",
                "LPUSH l a z",
                "LRANGE l 0 -1",
                "LPOP l",
                "LINSERT l AFTER c x",
                "LINSERT l BEFORE b y",
                "LRANGE l 0 -1",
                "LREM l 0 x",
                "LSET l -1 e",
                "LINDEX l 1",
                "LMOVE l m RIGHT LEFT",
                "RPOPLPUSH l m",
                "LPOS l b",
                "LTRIM l 1 -1",
                "LMPOP 2 nope l LEFT COUNT 5",
                "EXISTS l",
            ],
        );
        assert_eq!(replies[2], bulks(&["z", "a", "b", "c", "d"]));
        assert_eq!(replies[6], bulks(&["a", "y", "b", "c", "x", "d"]));
        assert_eq!(replies[9], bulk("y"));
        assert_eq!(replies[12], R::Int(2));
        assert_eq!(replies[14], R::Array(vec![bulk("l"), bulks(&["y", "b"])]));
        assert_eq!(replies[15], R::Int(0), "the last pop deletes the list");
    }
    let store = open(dir.path());
    assert_eq!(
        run(&store, &["LRANGE m 0 -1", "TYPE m", "LLEN m"]),
        vec![bulks(&["c", "e"]), R::Simple(b"list".to_vec()), R::Int(2)]
    );
}

/// INFO's keyspace hits and misses count a key once, whatever its type: a collection's meta
/// record is the hit, its members and a string miss before it are not counted again.
#[test]
fn keyspace_hits_and_misses_count_each_key_once() {
    let server = TestServer::start();
    let mut c = server.raw();
    let stat = |c: &mut RawClient, name: &str| -> i64 {
        let R::Bulk(info) = parse(&c.cmd(&["INFO", "stats"])) else { panic!("INFO is a bulk string") };
        let info = String::from_utf8(info).unwrap();
        info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap().trim().parse().unwrap()
    };
    parse(&c.cmd(&["HSET", "h", "f", "v"]));
    let (hits, misses) = (stat(&mut c, "keyspace_hits"), stat(&mut c, "keyspace_misses"));
    for args in [&["HGET", "h", "f"][..], &["HGET", "nope", "f"], &["GET", "nope"], &["SCARD", "h"]] {
        parse(&c.cmd(args));
    }
    assert_eq!(stat(&mut c, "keyspace_hits") - hits, 2, "HGET h and SCARD h (WRONGTYPE: found)");
    assert_eq!(stat(&mut c, "keyspace_misses") - misses, 2, "HGET nope and GET nope");
}

/// The state a crash test compares: each collection's members (sorted where unordered) and
/// counts, and DBSIZE.
fn collections_state(store: &Arc<Store>) -> Vec<R> {
    let mut replies = run(
        store,
        &[
            "HGETALL h",
            "SMEMBERS s",
            "LRANGE l 0 -1",
            "HLEN h",
            "SCARD s",
            "LLEN l",
            "DBSIZE",
            "ZRANGE z 0 -1 WITHSCORES",
            "ZCARD z",
        ],
    );
    if let R::Array(items) = &mut replies[0] {
        let mut pairs: Vec<Vec<R>> = items.chunks(2).map(<[R]>::to_vec).collect();
        pairs.sort();
        *items = pairs.concat();
    }
    if let R::Array(items) = &mut replies[1] {
        items.sort();
    }
    replies
}

/// Adversary: power loss at each file-system operation of a run of collection writes in turn
/// (the operation fails and the file system halts, then a crash keeps a random prefix of what
/// was not synced). After recovery the collections hold the state after some prefix of the
/// commands that includes every acknowledged one, never half of the EXEC (which touches three
/// collections), and every count agrees with its members.
#[test]
fn a_crash_keeps_every_acknowledged_collection_write_and_no_half_exec() {
    use ferrocask::testing::{CrashMode, Fault, FaultKind, SimFs};
    let script = [
        "HSET h a 1 b 2",
        "SADD s x y",
        "RPUSH l 1 2 3",
        "ZADD z 1 a 2 b",
        "MULTI",
        "HSET h c 3",
        "ZINCRBY z 5 a",
        "SADD s z",
        "LPUSH l 0",
        "DEL gone",
        "EXEC",
        "HDEL h a",
        "SREM s x",
        "RPOP l",
        "DEL h",
        "HSET h d 4",
    ];
    let options = || {
        common::ordered(Options {
            segment_bytes: 64 << 10,
            preallocate_bytes: 0,
            auto_compact: false,
            ..Options::default()
        })
    };
    let open_sim = |fs: &Arc<SimFs>| Arc::new(Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap());
    // The state after each prefix of the script, run as one client (a prefix that ends inside
    // MULTI leaves the EXEC out), and the file-system operations the whole script takes.
    let states: Vec<Vec<R>> = (0..=script.len())
        .map(|j| {
            let store = open_sim(&SimFs::new());
            if j > 0 {
                run(&store, &script[..j]);
            }
            collections_state(&store)
        })
        .collect();
    let fs = SimFs::new();
    let store = open_sim(&fs);
    let before = fs.op_count();
    run(&store, &script);
    let ops = fs.op_count() - before;
    drop(store);
    assert!(ops >= 20, "{ops} operations: a write and a sync for each of the 10 writing commands");
    for n in 0..ops {
        let fs = SimFs::new();
        let store = open_sim(&fs);
        fs.inject(Fault::nth(n, FaultKind::Eio).halt());
        let replies = run(&store, &script);
        // Acknowledged: the commands before the first failure (later ones fail: the store is
        // poisoned, or the file system halted).
        let acked = replies.iter().position(|r| matches!(r, R::Error(_))).unwrap_or(script.len());
        drop(store);
        let modes = [CrashMode::Prefix, CrashMode::Nothing, CrashMode::Everything, CrashMode::Sectors512];
        fs.crash(modes[n as usize % modes.len()], n);
        let store = open_sim(&fs);
        store.check_ordered_index();
        let state = collections_state(&store);
        assert!(
            states[acked..].contains(&state),
            "crash at operation {n} (after {acked} acknowledged commands): {state:?} is no prefix's state"
        );
        let counts = |i: usize| match &state[i] {
            R::Array(items) => items.len() as i64,
            other => panic!("{other:?}"),
        };
        assert_eq!(state[3], R::Int(counts(0) / 2), "HLEN agrees with HGETALL");
        assert_eq!(state[4], R::Int(counts(1)), "SCARD agrees with SMEMBERS");
        assert_eq!(state[5], R::Int(counts(2)), "LLEN agrees with LRANGE");
        assert_eq!(state[8], R::Int(counts(7) / 2), "ZCARD agrees with ZRANGE");
    }
}

/// INFO keyspace's `keys` is DBSIZE: each collection once, no member record.
#[test]
fn info_keyspace_counts_user_keys() {
    let server = TestServer::start();
    let mut c = server.raw();
    parse(&c.cmd(&["HSET", "h", "a", "1", "b", "2"]));
    parse(&c.cmd(&["ZADD", "z", "1", "a", "2", "b"]));
    parse(&c.cmd(&["SET", "s", "v"]));
    let R::Bulk(info) = parse(&c.cmd(&["INFO", "keyspace"])) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("db0:keys=3,"), "{info}");
    assert_eq!(parse(&c.cmd(&["DBSIZE"])), R::Int(3));
}
