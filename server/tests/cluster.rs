//! The command layer's second executor (issue 22), in process: what a cluster member must do
//! that the differential test does not generate. Each test names its adversary.

mod common;

use common::{parse, RawClient, TestCluster, R};

fn bulk(s: &str) -> R {
    R::Bulk(s.as_bytes().to_vec())
}

fn ok() -> R {
    R::Simple(b"OK".to_vec())
}

/// Sends `args` until the cluster stops refusing it as not applied (TRYAGAIN, CLUSTERDOWN: a
/// leadership change on a busy machine), as a client would, for at most 20 s.
fn cmd(client: &mut RawClient, args: &[&str]) -> R {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = parse(&client.cmd(args));
        if !matches!(&reply, R::Error(e) if e.starts_with(b"TRYAGAIN") || e.starts_with(b"CLUSTERDOWN")) {
            return reply;
        }
        assert!(std::time::Instant::now() < deadline, "{args:?} still refused after 20 s: {reply:?}");
        // A client's pause before it tries again (pacing, not synchronisation).
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Adversary: another client writes a WATCHed key between WATCH and EXEC, through another
/// member. Replicas number records differently, so WATCH compares the value's fingerprint read
/// on the leader: the EXEC must abort (null array), and succeed when nothing changed.
#[test]
fn watch_sees_a_write_through_another_member() {
    let cluster = TestCluster::start(3);
    let follower = cluster.follower();
    let other = (follower + 1) % 3;
    let (mut a, mut b) = (RawClient::connect(cluster.addrs[follower]), RawClient::connect(cluster.addrs[other]));
    assert_eq!(cmd(&mut a, &["SET", "k", "1"]), ok());
    assert_eq!(cmd(&mut a, &["WATCH", "k"]), ok());
    assert_eq!(cmd(&mut b, &["SET", "k", "2"]), ok());
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["INCR", "k"]), R::Simple(b"QUEUED".to_vec()));
    assert_eq!(cmd(&mut a, &["EXEC"]), R::Null, "a write since WATCH aborts the transaction");
    assert_eq!(cmd(&mut b, &["GET", "k"]), bulk("2"));
    assert_eq!(cmd(&mut a, &["WATCH", "k", "absent"]), ok());
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    cmd(&mut a, &["INCR", "k"]);
    cmd(&mut a, &["SET", "absent", "x"]);
    assert_eq!(cmd(&mut a, &["EXEC"]), R::Array(vec![R::Int(3), ok()]), "nothing changed: it runs");
    assert_eq!(cmd(&mut b, &["GET", "absent"]), bulk("x"));
}

/// Adversary: the state machine's own keys (applied position, membership) live in the same
/// store as the data. No command may see or name them: a fresh cluster is empty to DBSIZE,
/// KEYS, SCAN and RANDOMKEY (which once looped forever on a page holding only them), and
/// FLUSHALL leaves the cluster working.
#[test]
fn the_cluster_s_own_keys_are_invisible() {
    let cluster = TestCluster::start(3);
    let mut c = RawClient::connect(cluster.addrs[cluster.follower()]);
    assert_eq!(cmd(&mut c, &["DBSIZE"]), R::Int(0));
    assert_eq!(cmd(&mut c, &["KEYS", "*"]), R::Array(vec![]));
    assert_eq!(cmd(&mut c, &["SCAN", "0", "COUNT", "1000"]), R::Array(vec![bulk("0"), R::Array(vec![])]));
    assert_eq!(cmd(&mut c, &["RANDOMKEY"]), R::Null);
    assert_eq!(cmd(&mut c, &["SET", "a", "1"]), ok());
    assert_eq!(cmd(&mut c, &["DBSIZE"]), R::Int(1));
    assert_eq!(cmd(&mut c, &["KEYS", "*"]), R::Array(vec![bulk("a")]));
    assert_eq!(cmd(&mut c, &["FLUSHALL"]), ok());
    assert_eq!(cmd(&mut c, &["DBSIZE"]), R::Int(0));
    assert_eq!(cmd(&mut c, &["SET", "b", "2"]), ok(), "the cluster still applies after FLUSHALL");
    let reserved = b"\xff\xfe\x00ferrocask-raft/position";
    let reply = parse(&c.cmd(&[&b"GET"[..], &reserved[..]]));
    assert!(matches!(&reply, R::Error(e) if e.starts_with(b"ERR keys that start with")), "{reply:?}");
}

/// Adversary: replicas whose apply runs at different wall times. Expiry is fixed by the
/// leader's time in the entry: a key set with PX expires for reads through every member, and
/// TTL agrees.
#[test]
fn expiry_is_the_same_through_every_member() {
    let cluster = TestCluster::start(3);
    let mut clients: Vec<RawClient> = cluster.addrs.iter().map(|a| RawClient::connect(*a)).collect();
    assert_eq!(cmd(&mut clients[0], &["SET", "short", "v", "PX", "300"]), ok());
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let before = now_ms();
    assert_eq!(cmd(&mut clients[1], &["SET", "long", "v", "EX", "1000"]), ok());
    let after = now_ms();
    // The expiry is an absolute time fixed once, by the leader, so every member reports the same
    // one (not a TTL window, which a loaded machine could push past any bound).
    let expiries: Vec<R> = clients.iter_mut().map(|c| cmd(c, &["PEXPIRETIME", "long"])).collect();
    let R::Int(at) = expiries[0] else { panic!("PEXPIRETIME is an integer: {:?}", expiries[0]) };
    assert!(expiries.iter().all(|e| *e == R::Int(at)), "every member has one expiry: {expiries:?}");
    assert!((before + 1_000_000..=after + 1_000_000).contains(&at), "{before} {at} {after}");
    assert!(
        common::wait_for(std::time::Duration::from_secs(10), || {
            clients.iter_mut().all(|c| cmd(c, &["GET", "short"]) == R::Null)
        }),
        "the key expires for every member"
    );
    assert_eq!(cmd(&mut clients[2], &["EXISTS", "short", "long"]), R::Int(1));
}

/// Hashes and sets through the cluster: written through one member, read through the others,
/// with the same handlers as a single node (issue 23). SPOP's pick is drawn from the entry's
/// time and the set's stamp, so every replica pops the same member.
#[test]
fn hashes_and_sets_through_every_member() {
    let cluster = TestCluster::start(3);
    let mut clients: Vec<RawClient> = cluster.addrs.iter().map(|a| RawClient::connect(*a)).collect();
    assert_eq!(cmd(&mut clients[0], &["HSET", "h", "a", "1", "b", "2"]), R::Int(2));
    assert_eq!(cmd(&mut clients[1], &["SADD", "s", "x", "y", "z"]), R::Int(3));
    assert_eq!(cmd(&mut clients[2], &["HINCRBY", "h", "a", "5"]), R::Int(6));
    assert_eq!(cmd(&mut clients[0], &["ZADD", "z", "2", "b", "1", "a"]), R::Int(2));
    assert_eq!(cmd(&mut clients[1], &["ZINCRBY", "z", "0.5", "a"]), bulk("1.5"));
    for c in &mut clients {
        let R::Array(mut pairs) = cmd(c, &["HGETALL", "h"]) else { panic!("HGETALL is an array in RESP2") };
        let mut sorted: Vec<Vec<R>> = pairs.chunks(2).map(<[R]>::to_vec).collect();
        sorted.sort();
        pairs = sorted.concat();
        assert_eq!(pairs, vec![bulk("a"), bulk("6"), bulk("b"), bulk("2")]);
        let R::Array(mut members) = cmd(c, &["SMEMBERS", "s"]) else { panic!() };
        members.sort();
        assert_eq!(members, vec![bulk("x"), bulk("y"), bulk("z")]);
        assert_eq!(cmd(c, &["TYPE", "s"]), R::Simple(b"set".to_vec()));
        assert_eq!(cmd(c, &["OBJECT", "ENCODING", "h"]), bulk("hashtable"));
        assert_eq!(
            cmd(c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
            R::Array(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("2")])
        );
        let R::Array(help) = cmd(c, &["OBJECT", "HELP"]) else { panic!("OBJECT HELP's lines cross the wire") };
        assert_eq!(help.len(), 15);
    }
    let R::Bulk(popped) = cmd(&mut clients[1], &["SPOP", "s"]) else { panic!("SPOP pops") };
    assert_eq!(cmd(&mut clients[2], &["SISMEMBER", "s", std::str::from_utf8(&popped).unwrap()]), R::Int(0));
    assert_eq!(cmd(&mut clients[0], &["SCARD", "s"]), R::Int(2));
    assert_eq!(cmd(&mut clients[0], &["DBSIZE"]), R::Int(3));
    assert_eq!(cmd(&mut clients[0], &["DEL", "h", "s", "z"]), R::Int(3));
    assert_eq!(cmd(&mut clients[2], &["KEYS", "*"]), R::Array(vec![]));
}

/// Workload: a subscriber on every member, messages published through each member in turn.
/// Every subscriber gets every message, in each publisher's order, whichever member took the
/// PUBLISH (sent on over the Raft listeners, not through the log); PUBLISH counts the receivers
/// on the member that took it, as Redis Cluster's does.
#[test]
fn a_publish_on_any_member_reaches_the_subscribers_of_every_member() {
    let cluster = TestCluster::start(3);
    let mut subscribers: Vec<RawClient> = cluster.addrs.iter().map(|a| RawClient::connect(*a)).collect();
    for s in &mut subscribers {
        let confirmed = parse(&s.cmd(&["SUBSCRIBE", "events"]));
        assert_eq!(confirmed, R::Array(vec![bulk("subscribe"), bulk("events"), R::Int(1)]));
    }
    for (i, addr) in cluster.addrs.iter().enumerate() {
        let mut publisher = RawClient::connect(*addr);
        for n in 0..3 {
            let message = format!("from {i}: {n}");
            assert_eq!(parse(&publisher.cmd(&["PUBLISH", "events", &message])), R::Int(1), "this member's own");
        }
        for (j, s) in subscribers.iter_mut().enumerate() {
            for n in 0..3 {
                let got = parse(&s.reply().expect("the subscriber stays connected"));
                let want = R::Array(vec![bulk("message"), bulk("events"), bulk(&format!("from {i}: {n}"))]);
                assert_eq!(got, want, "member {j}'s subscriber, published on member {i}");
            }
        }
    }
    let mut other = RawClient::connect(cluster.addrs[0]);
    assert_eq!(parse(&other.cmd(&["PUBLISH", "nobody", "m"])), R::Int(0));
}

/// INFO's `blocked_clients` on the member `client` is connected to.
fn blocked(client: &mut RawClient) -> usize {
    let R::Bulk(info) = parse(&client.cmd(&["INFO", "clients"])) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8(info).unwrap();
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).expect("blocked_clients").trim().parse().unwrap()
}

/// Adversary: the push that makes a pop possible is sent to another member than the one the
/// client is blocked on. It reaches every member through the log, and each member's state
/// machine wakes its own waiters as it applies it; each woken pop goes through the log too, so
/// two waiters on two members get one element each and none is left or popped twice.
#[test]
fn a_push_through_one_member_wakes_clients_blocked_on_the_others() {
    let cluster = TestCluster::start(3);
    let follower = cluster.follower();
    let (second, third) = ((follower + 1) % 3, (follower + 2) % 3);
    let mut pusher = RawClient::connect(cluster.addrs[third]);
    assert_eq!(cmd(&mut pusher, &["SET", "ready", "1"]), ok(), "the cluster has a leader");
    let mut waiters = Vec::new();
    for member in [follower, second] {
        let mut watcher = RawClient::connect(cluster.addrs[member]);
        let mut waiting = RawClient::connect(cluster.addrs[member]);
        waiting.send(&["BLPOP", "q", "0"]);
        let limit = std::time::Duration::from_secs(20);
        assert!(common::wait_for(limit, || blocked(&mut watcher) == 1), "blocked on member {member}");
        waiters.push(waiting);
    }
    assert_eq!(cmd(&mut pusher, &["RPUSH", "q", "a", "b"]), R::Int(2));
    let mut got: Vec<R> = waiters.iter_mut().map(|w| parse(&w.reply().expect("a reply"))).collect();
    got.sort();
    let popped = |e: &str| R::Array(vec![bulk("q"), bulk(e)]);
    assert_eq!(got, vec![popped("a"), popped("b")]);
    assert_eq!(cmd(&mut pusher, &["LLEN", "q"]), R::Int(0));
    let mut timing_out = RawClient::connect(cluster.addrs[follower]);
    assert_eq!(parse(&timing_out.cmd(&["BZPOPMIN", "z", "0.1"])), R::Null);
}
