//! Pub/sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB, as Redis 7.0 answers
//! them in RESP2 and RESP3.
//!
//! Channels are not keys: nothing here touches the store, and nothing is durable. A message
//! reaches the clients subscribed when it is published, and no one else (as in Redis).
//!
//! The [`PubSub`] registry, shared by every connection, maps each channel and each pattern to
//! its subscribers, in subscription order. Each subscriber is its connection's outbox
//! (`outbox`): PUBLISH encodes the message once per protocol version among the receivers and
//! queues it without waiting; a subscriber whose outbox passes its bound is disconnected (see
//! `outbox::OUTBOX_BYTES_MAX`), so a slow subscriber costs bounded memory and never slows a
//! publisher. What PUBLISH to nobody costs: one relaxed load ([`PubSub::publish`]).
//!
//! Each session keeps its own channels and patterns ([`Subscriptions`]), which is what its
//! replies count; a session's subscriptions leave the registry when it unsubscribes, RESETs,
//! or is dropped (its connection closed, for whatever reason), so the registry never keeps a
//! client that has gone. Lock order: the registry's mutex is taken alone, and sending to an
//! outbox under it never waits.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::cmd::parse::glob_match;
use crate::cmd::Spec;
use crate::outbox::Outbox;
use crate::reply::Reply;
use crate::session::{Outcome, Session};

/// Channels or patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
        }
    }
}

/// One subscribed connection, as the registry holds it.
#[derive(Clone, Debug)]
pub(crate) struct Subscriber {
    outbox: Outbox,
    /// The connection's protocol version now (HELLO may change it while subscribed in RESP3).
    resp: Arc<AtomicU8>,
}

impl Subscriber {
    pub(crate) fn new(outbox: Outbox, resp: Arc<AtomicU8>) -> Subscriber {
        Subscriber { outbox, resp }
    }

    fn client(&self) -> u64 {
        self.outbox.client()
    }
}

/// The registry every connection shares.
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    /// (channel or pattern, client) pairs subscribed: what PUBLISH reads first.
    subscriptions: AtomicUsize,
    registry: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    channels: HashMap<Bytes, Vec<Subscriber>>,
    /// In the order each pattern was first subscribed to: a message matching several patterns
    /// is delivered in that order. Every PUBLISH tries each pattern, so they are few in
    /// practice, and a list costs least to walk.
    patterns: Vec<(Bytes, Vec<Subscriber>)>,
}

impl Registry {
    fn subscribers(&mut self, kind: Kind, name: &[u8]) -> Option<&mut Vec<Subscriber>> {
        match kind {
            Kind::Channel => self.channels.get_mut(name),
            Kind::Pattern => self.patterns.iter_mut().find(|(p, _)| p == name).map(|(_, s)| s),
        }
    }

    fn insert(&mut self, kind: Kind, name: &Bytes, who: Subscriber) {
        if let Some(subscribers) = self.subscribers(kind, name) {
            subscribers.push(who);
            return;
        }
        match kind {
            Kind::Channel => drop(self.channels.insert(name.clone(), vec![who])),
            Kind::Pattern => self.patterns.push((name.clone(), vec![who])),
        }
    }

    fn forget(&mut self, kind: Kind, name: &[u8]) {
        match kind {
            Kind::Channel => drop(self.channels.remove(name)),
            Kind::Pattern => self.patterns.retain(|(p, _)| p != name),
        }
    }
}

/// A message encoded lazily, once per protocol version among its receivers.
struct Encoded<'a> {
    parts: [&'a [u8]; 4],
    /// `message` has three parts, `pmessage` four.
    len: usize,
    frames: [Option<Bytes>; 2],
}

impl<'a> Encoded<'a> {
    fn new(parts: &[&'a [u8]]) -> Encoded<'a> {
        let mut all: [&[u8]; 4] = [b""; 4];
        all[..parts.len()].copy_from_slice(parts);
        Encoded { parts: all, len: parts.len(), frames: [None, None] }
    }

    fn frame(&mut self, resp: u8) -> Bytes {
        let at = usize::from(resp >= 3);
        let (parts, len) = (&self.parts, self.len);
        self.frames[at]
            .get_or_insert_with(|| {
                let push = Reply::Push(parts[..len].iter().map(|p| Reply::Bulk(Bytes::copy_from_slice(p))).collect());
                let mut out = BytesMut::new();
                push.encode(resp, &mut out);
                out.freeze()
            })
            .clone()
    }
}

impl PubSub {
    /// Adds `who` to the subscribers of `name` (which it is not subscribed to yet).
    pub(crate) fn subscribe(&self, kind: Kind, name: &Bytes, who: &Subscriber) {
        self.registry.lock().insert(kind, name, who.clone());
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes `client` from the subscribers of `name`; a name left without any goes.
    pub(crate) fn unsubscribe(&self, kind: Kind, name: &[u8], client: u64) {
        let mut registry = self.registry.lock();
        let Some(subscribers) = registry.subscribers(kind, name) else { return };
        let before = subscribers.len();
        subscribers.retain(|s| s.client() != client);
        self.subscriptions.fetch_sub(before - subscribers.len(), Ordering::Relaxed);
        if subscribers.is_empty() {
            registry.forget(kind, name);
        }
    }

    /// Delivers `message` to the subscribers of `channel` and of every pattern it matches on
    /// this server; the number of receivers (a client subscribed to the channel and to a
    /// matching pattern counts, and receives, twice, as in Redis). Never waits.
    pub(crate) fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        if self.subscriptions.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let registry = self.registry.lock();
        let mut receivers = 0;
        if let Some(subscribers) = registry.channels.get(channel) {
            let mut encoded = Encoded::new(&[b"message", channel, message]);
            for s in subscribers {
                s.outbox.send(encoded.frame(s.resp.load(Ordering::Relaxed)), "pub/sub");
            }
            receivers += subscribers.len();
        }
        for (pattern, subscribers) in &registry.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            let mut encoded = Encoded::new(&[b"pmessage", pattern, channel, message]);
            for s in subscribers {
                s.outbox.send(encoded.frame(s.resp.load(Ordering::Relaxed)), "pub/sub");
            }
            receivers += subscribers.len();
        }
        receivers
    }

    /// The clients subscribed to anything (CLIENT KILL TYPE pubsub).
    pub(crate) fn subscribed_clients(&self) -> std::collections::HashSet<u64> {
        let registry = self.registry.lock();
        let channels = registry.channels.values().flatten();
        channels.chain(registry.patterns.iter().flat_map(|(_, s)| s)).map(Subscriber::client).collect()
    }

    /// The channels with at least one subscriber, matching `pattern` if given (PUBSUB CHANNELS).
    fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let registry = self.registry.lock();
        registry.channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c))).cloned().collect()
    }

    fn numsub(&self, channel: &[u8]) -> usize {
        self.registry.lock().channels.get(channel).map_or(0, Vec::len)
    }

    /// The channels and the patterns with at least one subscriber (INFO's `pubsub_channels`
    /// and `pubsub_patterns`; PUBSUB NUMPAT is the second).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let registry = self.registry.lock();
        (registry.channels.len(), registry.patterns.len())
    }

    /// (channel or pattern, client) pairs subscribed: 0 once every subscriber has gone.
    #[cfg(test)]
    fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }
}

/// One session's channels and patterns (sorted: UNSUBSCRIBE without arguments answers in this
/// order, where Redis answers in its hash table's).
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
}

impl Subscriptions {
    /// Channels and patterns: the count every (un)subscribe confirmation carries.
    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn of(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }
}

/// The confirmation of one (un)subscription: `[word, name or nil, count]`.
fn confirmation(word: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    let name = name.map_or(Reply::Nil, Reply::Bulk);
    Reply::Push(vec![Reply::bulk(word), name, Reply::Int(count as i64)])
}

/// SUBSCRIBE / PSUBSCRIBE name [name ...]: one confirmation per name.
pub(crate) fn subscribe(session: &mut Session, kind: Kind, args: &[Bytes]) -> Outcome {
    let me = session.subscriber();
    let mut replies = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        // A copy: the argument is a slice of the connection's read buffer, which it would pin.
        let name = Bytes::copy_from_slice(name);
        if session.subscriptions.of(kind).insert(name.clone()) {
            session.db.pubsub.subscribe(kind, &name, &me);
        }
        replies.push(confirmation(kind.subscribe_word(), Some(name), session.subscriptions.count()));
    }
    Outcome::Several(replies)
}

/// UNSUBSCRIBE / PUNSUBSCRIBE [name ...]: one confirmation per name, or per name subscribed if
/// none is given (one with a nil name if there is none).
pub(crate) fn unsubscribe(session: &mut Session, kind: Kind, args: &[Bytes]) -> Outcome {
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].iter().map(|a| Bytes::copy_from_slice(a)).collect()
    } else {
        session.subscriptions.of(kind).iter().cloned().collect()
    };
    let word = kind.unsubscribe_word();
    if names.is_empty() {
        return Outcome::Several(vec![confirmation(word, None, session.subscriptions.count())]);
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        if session.subscriptions.of(kind).remove(&name) {
            session.db.pubsub.unsubscribe(kind, &name, session.id);
        }
        replies.push(confirmation(word, Some(name), session.subscriptions.count()));
    }
    Outcome::Several(replies)
}

/// Takes every subscription of `session` out of the registry, without confirmations (RESET,
/// and the session's end).
pub(crate) fn unsubscribe_all(session: &mut Session) {
    for kind in [Kind::Channel, Kind::Pattern] {
        for name in std::mem::take(session.subscriptions.of(kind)) {
            session.db.pubsub.unsubscribe(kind, &name, session.id);
        }
    }
}

/// PUBLISH channel message: delivered here, and on a cluster member sent on to every other
/// member's subscribers; the reply counts this server's receivers (as Redis Cluster's does).
pub(crate) fn publish(session: &Session, args: &[Bytes]) -> Reply {
    let receivers = session.db.pubsub.publish(&args[1], &args[2]);
    if let Some(cluster) = &session.db.cluster {
        cluster.broadcast(&args[1], &args[2]);
    }
    Reply::Int(receivers as i64)
}

/// PUBSUB's subcommands and their arities (the command and subcommand counted).
pub(crate) const PUBSUB_SUBCOMMANDS: &[(&str, i32)] =
    &[("channels", -2), ("numsub", -2), ("numpat", 2), ("shardchannels", -2), ("shardnumsub", -2), ("help", 2)];

/// PUBSUB HELP's text, as Redis 7.0 prints it.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern] |
/// SHARDNUMSUB [channel ...] | HELP. There are no shard channels (SSUBSCRIBE is not served):
/// SHARDCHANNELS is empty and SHARDNUMSUB counts 0.
pub(crate) fn pubsub(session: &Session, args: &[Bytes]) -> Reply {
    let sub = match crate::server_cmds::subcommand(PUBSUB_SUBCOMMANDS, args, "PUBSUB") {
        Ok(sub) => sub,
        Err(e) => return e,
    };
    let registry = &session.db.pubsub;
    match sub {
        "channels" | "shardchannels" if args.len() > 3 => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        )),
        "channels" => {
            Reply::Array(registry.channels(args.get(2).map(|p| &p[..])).into_iter().map(Reply::Bulk).collect())
        }
        "shardchannels" => Reply::Array(Vec::new()),
        "numsub" | "shardnumsub" => {
            let count = |channel: &[u8]| if sub == "numsub" { registry.numsub(channel) } else { 0 };
            // A flat array in RESP3 too, as Redis 7.0 answers.
            Reply::Array(args[2..].iter().flat_map(|c| [Reply::Bulk(c.clone()), Reply::Int(count(c) as i64)]).collect())
        }
        "numpat" => Reply::Int(registry.counts().1 as i64),
        "help" => Reply::Array(PUBSUB_HELP.iter().map(|line| Reply::Status(line)).collect()),
        other => unreachable!("{other} is in PUBSUB's table"),
    }
}

/// The commands a RESP2 client may send while subscribed to anything.
pub(crate) fn allowed_while_subscribed(spec: &Spec) -> bool {
    matches!(spec.name, "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset")
}

/// Redis 7.0's refusal of any other command in RESP2 subscribed mode, naming it as Redis does
/// (`client|id` for a subcommand); an unknown subcommand or a subcommand's wrong arity is
/// reported instead, as Redis checks those first.
pub(crate) fn refused_while_subscribed(spec: &Spec, args: &[Bytes]) -> Reply {
    let name = match crate::server_cmds::full_name(args) {
        Some(Ok(full)) => full,
        Some(Err(e)) => return e,
        None => spec.name.to_string(),
    };
    Reply::error(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in \
         this context"
    ))
}

/// PING in RESP2 subscribed mode: `["pong", message or ""]`.
pub(crate) fn subscribed_ping(args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::Array(vec![Reply::bulk("pong"), Reply::bulk("")]),
        2 => Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(Bytes::copy_from_slice(&args[1]))]),
        _ => crate::cmd::wrong_arity("ping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Kill;

    fn subscriber(client: u64, resp: u8) -> (Subscriber, crate::outbox::OutboxReader) {
        let (outbox, reader) = crate::outbox::outbox(client, Arc::new(Kill::default()));
        (Subscriber::new(outbox, Arc::new(AtomicU8::new(resp))), reader)
    }

    #[test]
    fn publish_to_nobody_takes_no_lock_and_reaches_no_one() {
        let pubsub = PubSub::default();
        let _held = pubsub.registry.lock();
        assert_eq!(pubsub.publish(b"c", b"m"), 0, "answered without the registry's lock");
    }

    #[test]
    fn a_message_is_encoded_for_each_receiver_s_protocol() {
        let pubsub = PubSub::default();
        let (two, mut two_rx) = subscriber(1, 2);
        let (three, mut three_rx) = subscriber(2, 3);
        let c = Bytes::from_static(b"news.1");
        pubsub.subscribe(Kind::Channel, &c, &two);
        pubsub.subscribe(Kind::Pattern, &Bytes::from_static(b"news.*"), &three);
        assert_eq!(pubsub.publish(b"news.1", b"hi"), 2);
        assert_eq!(&two_rx.try_next().unwrap()[..], b"*3\r\n$7\r\nmessage\r\n$6\r\nnews.1\r\n$2\r\nhi\r\n");
        assert_eq!(
            &three_rx.try_next().unwrap()[..],
            b">4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.1\r\n$2\r\nhi\r\n"
        );
        assert_eq!(pubsub.publish(b"other", b"hi"), 0);
    }

    #[test]
    fn the_registry_forgets_a_name_with_no_subscriber_left() {
        let pubsub = PubSub::default();
        let (a, _a_rx) = subscriber(1, 2);
        let (b, _b_rx) = subscriber(2, 2);
        let c = Bytes::from_static(b"c");
        pubsub.subscribe(Kind::Channel, &c, &a);
        pubsub.subscribe(Kind::Channel, &c, &b);
        assert_eq!((pubsub.numsub(b"c"), pubsub.subscriptions()), (2, 2));
        pubsub.unsubscribe(Kind::Channel, b"c", 1);
        pubsub.unsubscribe(Kind::Channel, b"c", 1);
        assert_eq!((pubsub.numsub(b"c"), pubsub.subscriptions()), (1, 1));
        pubsub.unsubscribe(Kind::Channel, b"c", 2);
        assert_eq!((pubsub.counts(), pubsub.subscriptions()), ((0, 0), 0));
        assert!(pubsub.registry.lock().channels.is_empty());
    }
}
