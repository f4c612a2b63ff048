//! Pub/sub with several connections: the `redis` crate's pub/sub client as an application uses
//! it, and raw connections where the frames themselves are the point (RESP3 pushes between
//! replies, a subscriber that stops reading). Byte-for-byte agreement with Redis is
//! differential.rs's; here each test names its adversary.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{parse, wait_for, RawClient, TestServer, R};

/// Generous bounds on conditions that hold within milliseconds on an idle machine: a loaded CI
/// runner must not fail them, and a broken server still fails them.
const WAIT: Duration = Duration::from_secs(20);

fn connect(server: &TestServer) -> redis::Connection {
    let conn = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn
}

fn bulk(s: &str) -> R {
    R::Bulk(s.as_bytes().to_vec())
}

/// PUBSUB NUMSUB of one channel.
fn numsub(c: &mut RawClient, channel: &str) -> i64 {
    match parse(&c.cmd(&["PUBSUB", "NUMSUB", channel])) {
        R::Array(items) if items.len() == 2 => match items[1] {
            R::Int(n) => n,
            _ => panic!("NUMSUB's count: {items:?}"),
        },
        other => panic!("NUMSUB: {other:?}"),
    }
}

/// The channels, the pattern count and INFO's pubsub fields: what says the registry is empty.
fn registry(c: &mut RawClient) -> (R, R, String) {
    let channels = parse(&c.cmd(&["PUBSUB", "CHANNELS"]));
    let numpat = parse(&c.cmd(&["PUBSUB", "NUMPAT"]));
    let info = match parse(&c.cmd(&["INFO", "stats"])) {
        R::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO: {other:?}"),
    };
    let fields = info.lines().filter(|l| l.starts_with("pubsub_")).collect::<Vec<_>>().join(",");
    (channels, numpat, fields)
}

fn empty_registry() -> (R, R, String) {
    (R::Array(vec![]), R::Int(0), "pubsub_channels:0,pubsub_patterns:0".to_string())
}

/// Workload: an application's subscriber (the `redis` crate), a publisher on another
/// connection. Messages arrive in publish order with their channel; PUBLISH counts the
/// receivers; after UNSUBSCRIBE nothing more arrives and PUBLISH counts none.
#[test]
fn a_subscriber_gets_what_is_published_until_it_unsubscribes() {
    let server = TestServer::start();
    let mut sub_conn = connect(&server);
    let mut publisher = connect(&server);
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe(&["orders", "users"]).unwrap();
    for i in 0..3 {
        let receivers: i64 = redis::cmd("PUBLISH").arg("orders").arg(format!("o{i}")).query(&mut publisher).unwrap();
        assert_eq!(receivers, 1);
    }
    let _: i64 = redis::cmd("PUBLISH").arg("users").arg("u0").query(&mut publisher).unwrap();
    for (channel, payload) in [("orders", "o0"), ("orders", "o1"), ("orders", "o2"), ("users", "u0")] {
        let msg = sub.get_message().unwrap();
        assert_eq!((msg.get_channel_name(), msg.get_payload::<String>().unwrap().as_str()), (channel, payload));
    }
    sub.unsubscribe("orders").unwrap();
    let receivers: i64 = redis::cmd("PUBLISH").arg("orders").arg("late").query(&mut publisher).unwrap();
    assert_eq!(receivers, 0, "nobody listens to orders any more");
    let _: i64 = redis::cmd("PUBLISH").arg("users").arg("u1").query(&mut publisher).unwrap();
    let msg = sub.get_message().unwrap();
    assert_eq!((msg.get_channel_name(), msg.get_payload_bytes()), ("users", &b"u1"[..]), "not the late order");
}

/// Workload: pattern subscriptions beside a channel subscription. A message matching both is
/// received twice (as `message` and as `pmessage` with its pattern), and counted twice.
#[test]
fn a_pattern_subscriber_gets_every_matching_channel() {
    let server = TestServer::start();
    let mut sub_conn = connect(&server);
    let mut publisher = connect(&server);
    let mut sub = sub_conn.as_pubsub();
    sub.psubscribe("news.*").unwrap();
    sub.subscribe("news.sport").unwrap();
    let count = |channel: &str, publisher: &mut redis::Connection| -> i64 {
        redis::cmd("PUBLISH").arg(channel).arg("m").query(publisher).unwrap()
    };
    assert_eq!(count("news.tech", &mut publisher), 1);
    assert_eq!(count("weather", &mut publisher), 0);
    assert_eq!(count("news.sport", &mut publisher), 2);
    let msg = sub.get_message().unwrap();
    assert_eq!((msg.get_channel_name(), msg.get_pattern::<String>().unwrap()), ("news.tech", "news.*".to_string()));
    let msg = sub.get_message().unwrap();
    assert_eq!(msg.get_channel_name(), "news.sport");
    assert!(!msg.from_pattern(), "the channel subscription's copy first, as Redis");
    let msg = sub.get_message().unwrap();
    assert!(msg.from_pattern(), "then the pattern's");
    let mut raw = server.raw();
    assert_eq!(parse(&raw.cmd(&["PUBSUB", "NUMPAT"])), R::Int(1));
    assert_eq!(parse(&raw.cmd(&["PUBSUB", "CHANNELS", "news.*"])), R::Array(vec![bulk("news.sport")]));
    assert_eq!(numsub(&mut raw, "news.sport"), 1, "pattern subscriptions are not counted by NUMSUB");
}

/// Workload: a RESP3 client subscribes, then runs ordinary commands on the same connection
/// while another connection publishes. Its replies come in order, pushes (`>`) in between, and
/// RESP2's subscribed-mode refusal does not apply.
#[test]
fn resp3_pushes_arrive_between_the_replies_of_ordinary_commands() {
    let server = TestServer::start();
    let mut sub = server.raw();
    let mut publisher = server.raw();
    assert!(matches!(parse(&sub.cmd(&["HELLO", "3"])), R::Map(_)), "HELLO 3 answers a map");
    assert_eq!(sub.cmd(&["SUBSCRIBE", "c"]), b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    assert_eq!(parse(&publisher.cmd(&["PUBLISH", "c", "first"])), R::Int(1));
    assert_eq!(sub.reply().unwrap(), b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nfirst\r\n");
    assert_eq!(parse(&sub.cmd(&["SET", "k", "v"])), R::Simple(b"OK".to_vec()));
    assert_eq!(parse(&publisher.cmd(&["PUBLISH", "c", "second"])), R::Int(1));
    // The push and GET's reply, in whichever order they were written: both come, whole.
    sub.send(&["GET", "k"]);
    let mut got = vec![sub.reply().unwrap(), sub.reply().unwrap()];
    got.sort();
    assert_eq!(got, vec![b"$1\r\nv\r\n".to_vec(), b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$6\r\nsecond\r\n".to_vec()]);
    assert_eq!(parse(&sub.cmd(&["PING"])), R::Simple(b"PONG".to_vec()), "RESP3's PING is the usual one");
}

/// Adversary: a RESP2 client in subscribed mode sends commands Redis refuses there. Each is
/// refused with Redis's text (and the connection stays usable); PING answers `["pong", ""]`;
/// once it unsubscribed from everything, commands run again.
#[test]
fn resp2_subscribed_mode_refuses_other_commands() {
    let server = TestServer::start();
    let mut c = server.raw();
    assert_eq!(parse(&c.cmd(&["PSUBSCRIBE", "p*"])), R::Array(vec![bulk("psubscribe"), bulk("p*"), R::Int(1)]));
    for args in [&["GET", "k"][..], &["SET", "k", "v"], &["PUBLISH", "c", "m"], &["MULTI"]] {
        let reply = parse(&c.cmd(args));
        let want = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            args[0].to_lowercase()
        );
        assert_eq!(reply, R::Error(want.into_bytes()), "{args:?}");
    }
    assert_eq!(parse(&c.cmd(&["PING"])), R::Array(vec![bulk("pong"), bulk("")]));
    assert_eq!(parse(&c.cmd(&["PUNSUBSCRIBE"])), R::Array(vec![bulk("punsubscribe"), bulk("p*"), R::Int(0)]));
    assert_eq!(parse(&c.cmd(&["GET", "k"])), R::Null, "out of subscribed mode");
}

/// Adversary: a subscriber that stops reading while a publisher sends large messages. Its
/// queue is bounded (`outbox::OUTBOX_BYTES_MAX`): once past it the subscriber is disconnected,
/// every PUBLISH is still answered (the publisher never waits on it), and the server holds no
/// more than the bound for it. Bounded by bytes: the publisher sends at most the bound plus what
/// the kernel's socket buffers and the connection's own output can hold.
#[test]
fn a_subscriber_that_stops_reading_is_disconnected_and_publish_goes_on() {
    let server = TestServer::start();
    let mut sleeper = server.raw();
    assert_eq!(
        parse(&sleeper.cmd(&["SUBSCRIBE", "firehose"])),
        R::Array(vec![bulk("subscribe"), bulk("firehose"), R::Int(1)])
    );
    let mut publisher = server.raw();
    let message = vec![b'x'; 256 << 10];
    // The bound, the connection's output buffer (1 MiB) and loopback socket buffers (a few MiB
    // each way, autotuned): four times the bound is far past all of them.
    let most = 4 * ferrocask_server::outbox::OUTBOX_BYTES_MAX / message.len();
    let mut sent = 0;
    while numsub(&mut publisher, "firehose") == 1 {
        assert!(sent < most, "{sent} messages of {} bytes and the subscriber is still there", message.len());
        let reply = parse(&publisher.cmd(&[&b"PUBLISH"[..], b"firehose", &message]));
        assert!(matches!(reply, R::Int(0 | 1)), "PUBLISH answers: {reply:?}");
        sent += 1;
    }
    // What it still reads is what was in flight before the bound: then the end of the stream.
    sleeper.stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let read = sleeper.stream.read_to_end(&mut rest);
    assert!(read.is_ok(), "the subscriber's stream ends: {read:?}");
    assert!(rest.len() < sent * message.len(), "{} bytes: not every message was kept for it", rest.len());
    assert_eq!(parse(&publisher.cmd(&[&b"PUBLISH"[..], b"firehose", &message])), R::Int(0));
    assert!(wait_for(WAIT, || registry(&mut publisher) == empty_registry()), "{:?}", registry(&mut publisher));
}

/// Adversary: clients that leave without unsubscribing (they close, QUIT, or are killed), with
/// channels and patterns shared between them. Nothing of theirs stays in the registry.
#[test]
fn the_registry_is_empty_once_every_subscriber_has_gone() {
    let server = TestServer::start();
    let mut watcher = server.raw();
    assert_eq!(registry(&mut watcher), empty_registry());
    let mut clients: Vec<RawClient> = (0..6).map(|_| server.raw()).collect();
    let ids: Vec<String> = clients
        .iter_mut()
        .map(|c| match parse(&c.cmd(&["CLIENT", "ID"])) {
            R::Int(id) => id.to_string(),
            other => panic!("CLIENT ID: {other:?}"),
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&["SUBSCRIBE", "shared", &format!("own.{i}")]);
        c.reply().unwrap();
        c.reply().unwrap();
        assert_eq!(parse(&c.cmd(&["PSUBSCRIBE", "sh*"])), R::Array(vec![bulk("psubscribe"), bulk("sh*"), R::Int(3)]));
    }
    let (channels, numpat, fields) = registry(&mut watcher);
    assert!(matches!(&channels, R::Array(c) if c.len() == 7), "{channels:?}");
    assert_eq!((numpat, fields), (R::Int(1), "pubsub_channels:7,pubsub_patterns:1".to_string()));
    assert_eq!(numsub(&mut watcher, "shared"), 6);
    assert_eq!(parse(&watcher.cmd(&["PUBLISH", "shared", "m"])), R::Int(12), "each client: channel and pattern");
    // Two QUIT, two are killed by another client, the rest just close.
    for c in &mut clients[..2] {
        c.send(&["QUIT"]);
    }
    for id in &ids[2..4] {
        assert_eq!(parse(&watcher.cmd(&["CLIENT", "KILL", "ID", id])), R::Int(1));
    }
    let quitting = clients.split_off(4);
    drop(clients);
    drop(quitting);
    assert!(wait_for(WAIT, || registry(&mut watcher) == empty_registry()), "{:?}", registry(&mut watcher));
    assert_eq!(parse(&watcher.cmd(&["PUBLISH", "shared", "m"])), R::Int(0));
}

/// Workload: an operator closes the subscribers (`CLIENT KILL TYPE pubsub`), as with Redis.
/// Only the clients subscribed to something match; TYPE normal matches the others.
#[test]
fn client_kill_type_pubsub_closes_the_subscribers_only() {
    let server = TestServer::start();
    let mut admin = server.raw();
    let (mut sub, mut psub, mut plain) = (server.raw(), server.raw(), server.raw());
    assert_eq!(parse(&sub.cmd(&["SUBSCRIBE", "c"])), R::Array(vec![bulk("subscribe"), bulk("c"), R::Int(1)]));
    assert_eq!(parse(&psub.cmd(&["PSUBSCRIBE", "*"])), R::Array(vec![bulk("psubscribe"), bulk("*"), R::Int(1)]));
    assert_eq!(parse(&plain.cmd(&["PING"])), R::Simple(b"PONG".to_vec()));
    assert_eq!(parse(&admin.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"])), R::Int(2));
    assert_eq!(sub.reply(), None, "the subscriber is closed");
    assert_eq!(psub.reply(), None, "the pattern subscriber is closed");
    assert_eq!(parse(&plain.cmd(&["PING"])), R::Simple(b"PONG".to_vec()), "the other client goes on");
    // A closed client leaves the clients table just after its socket closes.
    let clients =
        |admin: &mut RawClient| String::from_utf8_lossy(&admin.cmd(&["CLIENT", "LIST"])).matches("id=").count();
    assert!(wait_for(WAIT, || clients(&mut admin) == 2), "{} clients", clients(&mut admin));
    assert_eq!(parse(&admin.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])), R::Int(1));
    assert_eq!(plain.reply(), None);
}

/// Adversary: a subscriber that changes protocol while subscribed (HELLO is allowed in RESP3).
/// Messages published after the HELLO come in the new protocol's shape, and RESP2's rules apply
/// from then on.
#[test]
fn a_subscriber_that_switches_protocol_gets_messages_in_the_new_one() {
    let server = TestServer::start();
    let (mut sub, mut publisher) = (server.raw(), server.raw());
    sub.cmd(&["HELLO", "3"]);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "c"]), b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    assert!(matches!(parse(&sub.cmd(&["HELLO", "2"])), R::Array(_)));
    assert_eq!(parse(&publisher.cmd(&["PUBLISH", "c", "m"])), R::Int(1));
    assert_eq!(sub.reply().unwrap(), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n");
    assert!(matches!(parse(&sub.cmd(&["GET", "k"])), R::Error(e) if e.starts_with(b"ERR Can't execute 'get'")));
}
