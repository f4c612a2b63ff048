//! One client's session: protocol version, authentication, name, MULTI queue and WATCHed keys;
//! turns each request into a reply now or a reply once its write is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;

use ferrocask_raft::network::AdminRequest;

use crate::cluster::wire::Command;
use crate::cluster::Kind;
use crate::cmd::parse::is;
use crate::cmd::{self, Handler, Spec};
use crate::db::{store_error, Db, Read, TxnView, Write};
use crate::outbox::{Outbox, OutboxReader};
use crate::pubsub::{self, Subscriber, Subscriptions};
use crate::reply::{quoted, Reply};
use crate::server_cmds;

/// A reply still waiting for its write to be durable.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What a request produced.
pub(crate) enum Outcome {
    /// The reply, now.
    Now(Reply),
    /// The reply, once the write (queued already, in order) is durable.
    Later(Pending),
    /// The reply, then the connection closes (QUIT).
    Close(Reply),
    /// No reply: the connection closes once the replies before it are written (SHUTDOWN, as
    /// Redis's, which clients take as success).
    Hangup,
    /// Several replies, in order (SUBSCRIBE and its kin answer one per name).
    Several(Vec<Reply>),
    /// MGET of more than [`MGET_SNAPSHOT_BYTES_MAX`] of values: an array of these keys' values,
    /// which the connection reads one at a time as it writes them, flushing as it goes.
    Values(Vec<Bytes>),
}

/// How the connection runs a request around its others; see [`Session::schedule`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Schedule {
    pub(crate) wait_for_writes: bool,
    pub(crate) barrier: bool,
    pub(crate) reply_charge: usize,
    /// A blocking pop outside MULTI: its reply may wait for ever, so the connection waits for
    /// it watching the socket (a client that closes leaves the registry at once).
    pub(crate) blocks: bool,
}

/// The most bytes of values an MGET reads at once, as one snapshot; a larger one is streamed key
/// by key (see DESIGN.md, "Memory bounds"), so one request never holds more than this plus one
/// value.
pub(crate) const MGET_SNAPSHOT_BYTES_MAX: usize = 4 << 20;

/// The most bytes of values one EXEC's replies may carry; past it the transaction is discarded
/// with an error (its replies are built by the group-commit leader, and cannot be streamed).
pub(crate) const EXEC_REPLY_BYTES_MAX: usize = 64 << 20;

struct Multi {
    queued: Vec<(&'static Spec, Vec<Bytes>)>,
    failed: bool,
}

/// One connection's state.
pub(crate) struct Session {
    pub(crate) db: Arc<Db>,
    pub(crate) id: u64,
    pub(crate) resp: u8,
    pub(crate) authenticated: bool,
    pub(crate) name: Vec<u8>,
    multi: Option<Multi>,
    /// Each WATCHed key with what identifies its value then: a number, never the value, so
    /// WATCH costs the same whatever the values' size.
    watched: Vec<(Bytes, Watched)>,
    /// This connection's outbox (MONITOR lines, pub/sub messages: see `outbox`), made when
    /// first needed.
    outbox: Option<Outbox>,
    /// The outbox's reading side, once made: taken by the connection, which writes its frames.
    pub(crate) outbox_reader: Option<OutboxReader>,
    /// The channels and patterns subscribed to.
    pub(crate) subscriptions: Subscriptions,
    /// `resp`, as the pub/sub registry reads it to encode a message for this connection.
    resp_shared: Arc<AtomicU8>,
}

/// What WATCH keeps of a key.
enum Watched {
    /// A single node: the version of its value (`None`: absent).
    Version(Option<u64>),
    /// A cluster member: its fingerprint (`apply::fingerprint`), read on the leader, filled in
    /// when WATCH's reply arrives (EXEC waits for it).
    Fingerprint(Arc<OnceLock<Option<u64>>>),
}

impl Session {
    pub(crate) fn new(db: Arc<Db>, id: u64) -> Session {
        let authenticated = db.password.is_none();
        Session {
            db,
            id,
            resp: 2,
            authenticated,
            name: Vec::new(),
            multi: None,
            watched: Vec::new(),
            outbox: None,
            outbox_reader: None,
            subscriptions: Subscriptions::default(),
            resp_shared: Arc::new(AtomicU8::new(2)),
        }
    }

    /// This connection's outbox, made (and its reader left for the connection) on first use.
    fn outbox(&mut self) -> Outbox {
        if let Some(outbox) = &self.outbox {
            return outbox.clone();
        }
        // A session without a registered client (the fuzzer's) gets a kill switch of its own.
        let kill = self.db.clients.lock().get(&self.id).map(|c| c.kill.clone()).unwrap_or_default();
        let (outbox, reader) = crate::outbox::outbox(self.id, kill);
        self.outbox = Some(outbox.clone());
        self.outbox_reader = Some(reader);
        outbox
    }

    /// This connection as the pub/sub registry holds a subscriber.
    pub(crate) fn subscriber(&mut self) -> Subscriber {
        Subscriber::new(self.outbox(), self.resp_shared.clone())
    }

    /// Sets the protocol version replies and pushes are encoded in.
    fn set_resp(&mut self, version: u8) {
        self.resp = version;
        self.resp_shared.store(version, Ordering::Relaxed);
    }

    /// Whether RESP2's subscribed mode restricts the commands (Redis's `CLIENT_PUBSUB` in RESP2).
    fn in_resp2_subscribed_mode(&self) -> bool {
        self.resp == 2 && self.subscriptions.count() > 0
    }

    /// How the connection must run `args` around its other requests, decided from its command:
    /// whether to wait for this connection's earlier writes first (a read must see them; writes
    /// queue behind each other in the store's log order, so a run of pipelined writes shares
    /// group commits instead of waiting one by one), whether to wait for its reply before the
    /// next request (FLUSHDB and FLUSHALL may take several transactions, see [`Session::flush`],
    /// and a later write must not be queued between them), and how many bytes of values its
    /// reply may carry, estimated now from its keys' value lengths (read without the values),
    /// which a waiting reply is charged against the connection's output bound.
    pub(crate) fn schedule(&self, args: &[Bytes]) -> Schedule {
        let Some(spec) = cmd::lookup(&args[0]) else { return Schedule::default() };
        let in_multi = self.multi.is_some();
        // Only a reply that waits in line is charged: a read's is encoded at once.
        let reply_charge = match &self.multi {
            Some(multi) if spec.name == "exec" => {
                multi.queued.iter().map(|(spec, args)| self.values_in_reply(spec, args)).sum()
            }
            _ if spec.writes() && !in_multi => self.values_in_reply(spec, args),
            _ => 0,
        };
        Schedule {
            // On a cluster member EXEC waits for the replies before it (WATCH's fingerprints),
            // and is itself a barrier: it is proposed once they are in.
            wait_for_writes: !(spec.writes() || in_multi || (spec.name == "exec" && self.db.cluster.is_none())),
            barrier: !in_multi && spec.lists_keys && spec.writes(),
            reply_charge,
            blocks: !in_multi && cmd::blocking::blocks(spec.name),
        }
    }

    /// Whether CLIENT PAUSE WRITE holds `args` back: a write, PUBLISH, or an EXEC with a write
    /// queued (Redis's "may replicate" commands, as far as ferrocask has them).
    pub(crate) fn writes_for_pause(&self, args: &[Bytes]) -> bool {
        let Some(spec) = cmd::lookup(&args[0]) else { return false };
        match (&self.multi, spec.name) {
            (Some(multi), "exec") => multi.queued.iter().any(|(spec, _)| spec.writes()),
            (_, "publish") => true,
            _ => spec.writes(),
        }
    }

    fn values_in_reply(&self, spec: &Spec, args: &[Bytes]) -> usize {
        if !spec.returns_values.applies_to(args) {
            return 0;
        }
        let view = self.db.view();
        spec.key_args(args).map(|key| view.meta(key).map_or(0, |m| m.value_len)).sum()
    }

    /// Runs one request (non-empty). Its run is counted (INFO commandstats) and, if slow,
    /// logged (SLOWLOG) once its reply is ready: for a write, once it is durable.
    pub(crate) fn handle(&mut self, args: Vec<Bytes>) -> Outcome {
        let start = Instant::now();
        self.db.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
        let Some(spec) = cmd::lookup(&args[0]) else {
            self.fail_multi();
            self.db.counters.error_replies.fetch_add(1, Ordering::Relaxed);
            return Outcome::Now(cmd::unknown_command(&args));
        };
        if !spec.arity_ok(args.len()) {
            self.fail_multi();
            return Outcome::Now(self.rejected(spec, cmd::wrong_arity(spec.name)));
        }
        if !self.authenticated && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
            self.fail_multi();
            return Outcome::Now(self.rejected(spec, Reply::error("NOAUTH Authentication required.")));
        }
        let cluster = self.db.cluster.is_some();
        if let Some(refusal) = spec.key_args(&args).find_map(|key| crate::db::reserved_key_refusal(key, cluster)) {
            self.fail_multi();
            return Outcome::Now(self.rejected(spec, Reply::error(refusal)));
        }
        if self.in_resp2_subscribed_mode() && !pubsub::allowed_while_subscribed(spec) {
            self.fail_multi();
            return Outcome::Now(self.rejected(spec, pubsub::refused_while_subscribed(spec, &args)));
        }
        if !self.db.monitors.is_empty() {
            self.feed_monitors(spec, &args);
        }
        if self.queues(spec) {
            // Counted when EXEC runs it, as Redis counts it.
            return Outcome::Now(self.queue(spec, args));
        }
        let outcome = match spec.handler {
            // Without a runtime (the fuzzer's dispatch) there is nothing to wait on or wake
            // it: a blocking pop acts as in MULTI.
            Handler::Write(_) if cmd::blocking::blocks(spec.name) && tokio::runtime::Handle::try_current().is_ok() => {
                return self.block(spec, args)
            }
            Handler::Read(_) | Handler::Write(_) if self.db.cluster.is_some() => self.clustered(spec, &args),
            Handler::Read(_) if spec.name == "mget" && self.values_in_reply(spec, &args) > MGET_SNAPSHOT_BYTES_MAX => {
                Outcome::Values(args[1..].to_vec())
            }
            Handler::Read(f) => Outcome::Now(f(&self.db.counted_view(), &args)),
            Handler::Pure(_) if spec.name == "ping" && self.in_resp2_subscribed_mode() => {
                Outcome::Now(pubsub::subscribed_ping(&args))
            }
            Handler::Pure(f) => Outcome::Now(f(&args)),
            Handler::Write(apply) if spec.lists_keys => return self.flush(spec, start, apply, args),
            Handler::Write(apply) => return self.write(spec, start, apply, args),
            Handler::Session => self.session_command(spec, &args),
        };
        match outcome {
            Outcome::Now(reply) => {
                record(&self.db, self.id, spec, start, &args, reply.is_error());
                Outcome::Now(reply)
            }
            Outcome::Close(reply) => {
                record(&self.db, self.id, spec, start, &args, reply.is_error());
                Outcome::Close(reply)
            }
            Outcome::Several(replies) => {
                record(&self.db, self.id, spec, start, &args, false);
                Outcome::Several(replies)
            }
            // SHUTDOWN: no reply to time beyond its own work.
            Outcome::Hangup => {
                record(&self.db, self.id, spec, start, &args, false);
                Outcome::Hangup
            }
            // A streamed MGET: timed up to the start of its reply.
            Outcome::Values(keys) => {
                record(&self.db, self.id, spec, start, &args, false);
                Outcome::Values(keys)
            }
            // EXEC (and, on a cluster member, WATCH, RAFT.NODE and every read or write): timed
            // until its reply is ready (for a write: once durable).
            Outcome::Later(pending) => {
                let (db, client) = (self.db.clone(), self.id);
                Outcome::Later(Box::pin(async move {
                    let reply = pending.await;
                    record(&db, client, spec, start, &args, reply.is_error());
                    reply
                }))
            }
        }
    }

    /// Whether `spec` is queued rather than run: in MULTI, all but the commands that end or
    /// manage the transaction, and the connection's own.
    fn queues(&self, spec: &Spec) -> bool {
        self.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
    }

    /// Shows the command to the MONITORs; a queued one is shown when EXEC runs it (before the
    /// EXEC), as Redis does.
    fn feed_monitors(&self, spec: &Spec, args: &[Bytes]) {
        if self.queues(spec) {
            return;
        }
        let Some((addr, unix)) = self.db.clients.lock().get(&self.id).map(|c| (c.addr.clone(), c.unix)) else {
            return;
        };
        if let (Some(multi), "exec") = (&self.multi, spec.name) {
            for (_, queued) in &multi.queued {
                self.db.monitors.feed(&addr, unix, queued);
            }
        }
        self.db.monitors.feed(&addr, unix, args);
    }

    /// MONITOR: this connection gets every command's line from now on.
    fn monitor(&mut self) -> Reply {
        if !self.db.clients.lock().contains_key(&self.id) {
            return Reply::error("ERR MONITOR needs a connected client");
        }
        let outbox = self.outbox();
        self.db.monitors.add(outbox);
        Reply::OK
    }

    /// A read or write on a cluster member: routed through the log (see `cluster`), replied to
    /// once it ran there (a write: committed by a majority and applied); timed by `handle`.
    fn clustered(&self, spec: &Spec, args: &[Bytes]) -> Outcome {
        let cluster = self.db.cluster.as_ref().expect("clustered is called on a cluster member");
        let kind = match spec.handler {
            Handler::Read(_) => Kind::Read,
            _ if spec.lists_keys => Kind::WriteAlone,
            _ => Kind::Write,
        };
        Outcome::Later(Box::pin(cluster.submit(kind, &Command::Run(args.to_vec()))))
    }

    /// A blocking pop (outside MULTI, which queues it): its pop now if possible, else once a
    /// write to one of its keys makes one possible, or a nil array at its timeout. Every try is
    /// a write of its own (see `blocking.rs`), replied to once durable.
    ///
    /// Counted as one call when it answers, timed from then: the wait is not the command's
    /// work (as Redis, whose SLOWLOG never shows a client's time blocked).
    fn block(&self, spec: &'static Spec, args: Vec<Bytes>) -> Outcome {
        let timeout = match cmd::blocking::timeout_of(&args) {
            Ok(timeout) => timeout,
            Err(e) => {
                record(&self.db, self.id, spec, Instant::now(), &args, true);
                return Outcome::Now(e);
            }
        };
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        // Copies: the arguments may wait a long time, and must not pin the read buffer.
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let (db, client) = (self.db.clone(), self.id);
        Outcome::Later(Box::pin(async move {
            let reply = block_until(db.clone(), client, args.clone(), deadline).await;
            record(&db, client, spec, Instant::now(), &args, reply.is_error());
            reply
        }))
    }

    /// A command refused before it ran (INFO commandstats' `rejected_calls`).
    fn rejected(&self, spec: &Spec, reply: Reply) -> Reply {
        self.db.command_stats[spec.index].rejected_calls.fetch_add(1, Ordering::Relaxed);
        self.db.counters.error_replies.fetch_add(1, Ordering::Relaxed);
        reply
    }

    fn fail_multi(&mut self) {
        if let Some(multi) = &mut self.multi {
            multi.failed = true;
        }
    }

    fn queue(&mut self, spec: &'static Spec, args: Vec<Bytes>) -> Reply {
        if matches!(spec.handler, Handler::Session) && spec.name != "unwatch" {
            self.fail_multi();
            return Reply::error(format!("ERR '{}' inside MULTI is not supported by ferrocask", spec.name));
        }
        let multi = self.multi.as_mut().expect("queue is called in MULTI");
        // The arguments are slices of the connection's read buffer: a queued command keeps
        // copies of its own, so it does not hold a whole buffer in memory until EXEC.
        multi.queued.push((spec, args.iter().map(|a| Bytes::copy_from_slice(a)).collect()));
        Reply::Status("QUEUED")
    }

    /// A write: one store transaction, replied to once durable; undone if it fails. Timed from
    /// `start` until it is durable; the transaction hands its arguments back for SLOWLOG, so
    /// timing it copies nothing.
    fn write(
        &self,
        spec: &'static Spec,
        start: Instant,
        apply: fn(&mut dyn Write, &[Bytes]) -> Reply,
        args: Vec<Bytes>,
    ) -> Outcome {
        let (limit, blocking) = (self.db.value_bytes_max, self.db.blocking.clone());
        let future = self.db.transaction(move |txn| {
            let mut view = TxnView::new(txn, limit).waking(&blocking);
            let reply = view.run(|view| apply(view, &args));
            (reply, args)
        });
        let (db, client) = (self.db.clone(), self.id);
        Outcome::Later(Box::pin(async move {
            match future.await {
                Ok((reply, args)) => {
                    record(&db, client, spec, start, &args, reply.is_error());
                    reply
                }
                Err(e) => {
                    record(&db, client, spec, start, &[Bytes::from_static(spec.name.as_bytes())], true);
                    store_error(e)
                }
            }
        }))
    }

    /// FLUSHDB and FLUSHALL: each transaction lists the keys as the leader sees them (every
    /// write queued before included) and deletes them. One transaction holds as many deletes as
    /// one batch fits (about 2 million keys of 16 bytes with the default 64 MiB segments), so
    /// up to that size a flush is atomic; past it, the next transaction goes on where the batch
    /// filled up, and the connection queues nothing of its own in between ([`Session::schedule`]).
    fn flush(
        &self,
        spec: &'static Spec,
        start: Instant,
        apply: fn(&mut dyn Write, &[Bytes]) -> Reply,
        args: Vec<Bytes>,
    ) -> Outcome {
        let (db, client, limit) = (self.db.clone(), self.id, self.db.value_bytes_max);
        Outcome::Later(Box::pin(async move {
            let reply = loop {
                let args = args.clone();
                let round = db.transaction(move |txn| {
                    let mut view = TxnView::new(txn, limit);
                    // Not `run`: the deletes that fit are kept, and the next round goes on.
                    let reply = apply(&mut view, &args);
                    (reply, view.overflowed)
                });
                match round.await {
                    Ok((_, true)) => continue,
                    Ok((reply, false)) => break reply,
                    Err(e) => break store_error(e),
                }
            };
            record(&db, client, spec, start, &args, reply.is_error());
            reply
        }))
    }

    fn session_command(&mut self, spec: &Spec, args: &[Bytes]) -> Outcome {
        let reply = match spec.name {
            "quit" => return Outcome::Close(Reply::OK),
            "exec" => return self.exec(),
            "multi" => self.multi_start(),
            "discard" => self.discard(),
            "watch" => return self.watch(args),
            "unwatch" => {
                self.watched.clear();
                Reply::OK
            }
            "reset" => self.reset(),
            "auth" => self.auth(args),
            "hello" => self.hello(args),
            "client" => server_cmds::client(self, args),
            "acl" => crate::acl::acl(self, args),
            "command" => server_cmds::command(args),
            "info" => server_cmds::info(&self.db, args),
            "config" => server_cmds::config(&self.db, args),
            "slowlog" => server_cmds::slowlog(&self.db, args),
            "latency" => server_cmds::latency(&self.db, args),
            "save" | "bgsave" | "lastsave" | "shutdown" => return crate::admin::run(&self.db, spec.name, args),
            "role" => match &self.db.cluster {
                Some(cluster) => cluster.role(),
                None => crate::admin::role(args),
            },
            "raft.node" => return self.raft_node(args),
            "monitor" => self.monitor(),
            "subscribe" => return pubsub::subscribe(self, pubsub::Kind::Channel, args),
            "psubscribe" => return pubsub::subscribe(self, pubsub::Kind::Pattern, args),
            "unsubscribe" => return pubsub::unsubscribe(self, pubsub::Kind::Channel, args),
            "punsubscribe" => return pubsub::unsubscribe(self, pubsub::Kind::Pattern, args),
            "publish" => pubsub::publish(self, args),
            "pubsub" => pubsub::pubsub(self, args),
            other => unreachable!("{other} has a session handler"),
        };
        Outcome::Now(reply)
    }

    /// RAFT.NODE ADD <id> <host:port> | RAFT.NODE REMOVE <id>: a membership change, run by the
    /// leader wherever it is sent.
    fn raft_node(&self, args: &[Bytes]) -> Outcome {
        let Some(cluster) = &self.db.cluster else {
            return Outcome::Now(Reply::error(
                "ERR this server is not a cluster member (start it with --node-id and --peers)",
            ));
        };
        let id = args.get(2).and_then(|a| crate::cmd::parse::strict_i64(a)).and_then(|id| u64::try_from(id).ok());
        let request = match (args.len(), id) {
            (4, Some(id)) if is(&args[1], "add") => match std::str::from_utf8(&args[3]) {
                Ok(addr) if addr.contains(':') => AdminRequest::AddNode { id, addr: addr.to_string() },
                _ => {
                    return Outcome::Now(Reply::error(
                        "ERR RAFT.NODE ADD <id> <host:port>: the address is not host:port",
                    ))
                }
            },
            (3, Some(id)) if is(&args[1], "remove") => AdminRequest::RemoveNode { id },
            _ => {
                return Outcome::Now(Reply::error("ERR syntax: RAFT.NODE ADD <id> <host:port> | RAFT.NODE REMOVE <id>"))
            }
        };
        Outcome::Later(cluster.admin(request))
    }

    fn multi_start(&mut self) -> Reply {
        if self.multi.is_some() {
            return Reply::error("ERR MULTI calls can not be nested");
        }
        self.multi = Some(Multi { queued: Vec::new(), failed: false });
        Reply::OK
    }

    fn discard(&mut self) -> Reply {
        if self.multi.take().is_none() {
            return Reply::error("ERR DISCARD without MULTI");
        }
        self.watched.clear();
        Reply::OK
    }

    fn watch(&mut self, args: &[Bytes]) -> Outcome {
        if self.multi.is_some() {
            return Outcome::Now(Reply::error("ERR WATCH inside MULTI is not allowed"));
        }
        if let Some(cluster) = &self.db.cluster {
            let keys: Vec<Bytes> = args[1..].iter().map(|k| Bytes::copy_from_slice(k)).collect();
            let slots: Vec<_> = keys.iter().map(|_| Arc::new(OnceLock::new())).collect();
            for (key, slot) in keys.iter().zip(&slots) {
                self.watched.push((key.clone(), Watched::Fingerprint(Arc::clone(slot))));
            }
            let read = cluster.submit(Kind::Read, &Command::Fingerprints(keys));
            return Outcome::Later(Box::pin(async move {
                match read.await {
                    Reply::Array(found) if found.len() == slots.len() => {
                        for (slot, f) in slots.iter().zip(found) {
                            let _ = slot.set(match f {
                                Reply::Int(f) => Some(u64::from_ne_bytes(f.to_ne_bytes())),
                                _ => None,
                            });
                        }
                        Reply::OK
                    }
                    Reply::Error(e) => Reply::Error(e),
                    _ => Reply::error("ERR internal: WATCH's read answered the wrong shape"),
                }
            }));
        }
        let view = self.db.view();
        for key in &args[1..] {
            let version = crate::collection::watch_version(&view, key);
            self.watched.push((Bytes::copy_from_slice(key), Watched::Version(version)));
        }
        Outcome::Now(Reply::OK)
    }

    /// EXEC: every queued command in one store transaction, so its writes commit as one batch
    /// and every read (key listings included) sees the state the transaction runs against;
    /// nothing is written (nil reply) if a WATCHed key was written since WATCH. Each command is
    /// atomic ([`TxnView::run`]); if the transaction's writes outgrow one batch, none is kept.
    fn exec(&mut self) -> Outcome {
        let Some(multi) = self.multi.take() else {
            return Outcome::Now(Reply::error("ERR EXEC without MULTI"));
        };
        let watched = std::mem::take(&mut self.watched);
        if multi.failed {
            return Outcome::Now(Reply::error("EXECABORT Transaction discarded because of previous errors."));
        }
        if let Some(cluster) = &self.db.cluster {
            // The fingerprints WATCH read are ready: EXEC waited for this connection's earlier
            // replies (`schedule`). One that failed to arrive fails the transaction, as a change.
            let Some(watched) = watched
                .into_iter()
                .map(|(key, w)| match w {
                    Watched::Fingerprint(slot) => slot.get().copied().map(|f| (key, f)),
                    Watched::Version(_) => None,
                })
                .collect::<Option<Vec<_>>>()
            else {
                return Outcome::Now(Reply::NilArray);
            };
            let command = Command::Exec { watched, queued: multi.queued.into_iter().map(|(_, args)| args).collect() };
            return Outcome::Later(Box::pin(cluster.submit(Kind::Write, &command)));
        }
        let (db, limit) = (self.db.clone(), self.db.value_bytes_max);
        let future = self.db.transaction(move |txn| {
            let mut view = TxnView::new(txn, limit).waking(&db.blocking);
            if watched
                .iter()
                .any(|(key, w)| !matches!(w, Watched::Version(v) if crate::collection::watch_version(&view, key) == *v))
            {
                return Reply::NilArray;
            }
            exec_queued(&mut view, &multi.queued, Some(&db.command_stats))
        });
        Outcome::Later(Box::pin(async move { future.await.unwrap_or_else(store_error) }))
    }

    fn reset(&mut self) -> Reply {
        self.multi = None;
        self.watched.clear();
        pubsub::unsubscribe_all(self);
        self.set_resp(2);
        self.name.clear();
        self.db.set_client_name(self.id, Vec::new());
        self.authenticated = self.db.password.is_none();
        Reply::Status("RESET")
    }

    /// Whether `password` is the configured one, in time independent of where they differ.
    fn password_matches(&self, password: &[u8]) -> bool {
        let Some(expected) = &self.db.password else { return true };
        let len = expected.len().max(password.len());
        let mut diff = (expected.len() != password.len()) as u8;
        for i in 0..len {
            diff |= expected.get(i).copied().unwrap_or(0) ^ password.get(i).copied().unwrap_or(0xff);
        }
        std::hint::black_box(diff) == 0
    }

    /// Authenticates as the default user (the only one); `Err` is the WRONGPASS reply.
    fn authenticate(&mut self, user: &[u8], password: &[u8]) -> Result<(), Reply> {
        if user == b"default" && self.password_matches(password) {
            self.authenticated = true;
            Ok(())
        } else {
            // The user name as sent (cut, and escaped by `?`: a client's line breaks cannot forge
            // log lines); never the password. The client's address is on the span.
            let user = String::from_utf8_lossy(&user[..user.len().min(LOGGED_USER_BYTES_MAX)]);
            tracing::warn!(user = ?user, "failed AUTH");
            Err(Reply::error("WRONGPASS invalid username-password pair or user is disabled."))
        }
    }

    fn auth(&mut self, args: &[Bytes]) -> Reply {
        if args.len() > 3 {
            return Reply::error(crate::cmd::parse::SYNTAX);
        }
        if args.len() == 2 && self.db.password.is_none() {
            return Reply::error(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            );
        }
        let (user, password) = if args.len() == 3 { (&args[1][..], &args[2]) } else { (&b"default"[..], &args[1]) };
        self.authenticate(user, password).map_or_else(|e| e, |()| Reply::OK)
    }

    fn hello(&mut self, args: &[Bytes]) -> Reply {
        let mut version = None;
        if let Some(arg) = args.get(1) {
            match crate::cmd::parse::strict_i64(arg) {
                Some(v @ 2..=3) => version = Some(v as u8),
                Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
                None => return Reply::error("ERR Protocol version is not an integer or out of range"),
            }
        }
        // As Redis does, every option is checked (the name included) before anything is
        // applied: a HELLO that answers an error has not authenticated the client.
        let (mut credentials, mut name) = (None, None);
        let mut j = 2;
        while j < args.len() {
            let more = args.len() - 1 - j;
            if is(&args[j], "auth") && more >= 2 {
                credentials = Some((args[j + 1].clone(), args[j + 2].clone()));
                j += 2;
            } else if is(&args[j], "setname") && more >= 1 {
                if let Err(e) = server_cmds::check_name(&args[j + 1]) {
                    return e;
                }
                name = Some(args[j + 1].clone());
                j += 1;
            } else {
                return Reply::error([&b"ERR Syntax error in HELLO option '"[..], quoted(&args[j]), b"'"].concat());
            }
            j += 1;
        }
        if let Some((user, password)) = credentials {
            if let Err(e) = self.authenticate(&user, &password) {
                return e;
            }
        }
        if !self.authenticated {
            return Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> \
                 AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
                 version at the same time",
            );
        }
        if let Some(name) = name {
            server_cmds::apply_name(self, &name);
        }
        if let Some(v) = version {
            self.set_resp(v);
        }
        server_cmds::hello_reply(self)
    }
}

impl Drop for Session {
    /// A closed connection's subscriptions leave the registry with it, whatever closed it.
    fn drop(&mut self) {
        pubsub::unsubscribe_all(self);
    }
}

/// A blocking pop's reply: its pop, tried now and again each time the registry wakes it, or a
/// nil array at `deadline` (`None`: never) or on CLIENT UNBLOCK. Its place in the registry is
/// left when this future ends or is dropped (its connection closed).
async fn block_until(db: Arc<Db>, id: u64, args: Vec<Bytes>, deadline: Option<tokio::time::Instant>) -> Reply {
    use crate::blocking::{UNBLOCKED_ERROR, UNBLOCKED_TIMEOUT};
    // Registered before the first try: a push between the try and the wait is not missed.
    let mut waiter = db.blocking.register(id, cmd::blocking::source_keys(&args));
    let mut retry = false;
    loop {
        let reply = pop_once(&db, &args, retry).await;
        if retry && reply == cmd::blocking::SKIPPED {
            waiter.pass();
        } else if !cmd::blocking::is_empty(&reply) {
            return reply;
        }
        retry = true;
        waiter.blocks();
        let woken = waiter.state.wake.notified();
        match deadline {
            Some(deadline) => tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(deadline) => return Reply::NilArray,
            },
            None => woken.await,
        }
        match waiter.state.unblocked.load(Ordering::Relaxed) {
            UNBLOCKED_TIMEOUT => return Reply::NilArray,
            UNBLOCKED_ERROR => return Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            _ => {}
        }
    }
}

/// One try of a blocking pop, as a write: in a store transaction, or through the log.
async fn pop_once(db: &Arc<Db>, args: &[Bytes], retry: bool) -> Reply {
    if let Some(cluster) = &db.cluster {
        let mut run = Vec::with_capacity(args.len() + 1);
        if retry {
            run.push(Bytes::from_static(crate::cluster::apply::RETRY));
        }
        run.extend_from_slice(args);
        return cluster.submit(Kind::Write, &Command::Run(run)).await;
    }
    let (blocking, limit, args) = (db.blocking.clone(), db.value_bytes_max, args.to_vec());
    let future = db.transaction(move |txn| {
        let mut view = TxnView::new(txn, limit).waking(&blocking);
        view.run(|view| if retry { cmd::blocking::retry(view, &args) } else { cmd::blocking::pop_now(view, &args) })
    });
    future.await.unwrap_or_else(store_error)
}

/// The most bytes of a user name a failed-AUTH log line quotes.
const LOGGED_USER_BYTES_MAX: usize = 64;

/// Microseconds since `start`.
fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Counts one run of `spec` that started at `start` (INFO commandstats, error replies) and, if
/// it took at least `slowlog-log-slower-than`, adds it to SLOWLOG and logs it, and to the latency
/// monitor's `command` event if that is on. What a fast command pays: a clock read, three relaxed
/// atomic adds and two relaxed loads.
fn record(db: &Db, client: u64, spec: &Spec, start: Instant, args: &[Bytes], failed: bool) {
    let usec = micros_since(start);
    db.command_stats[spec.index].ran(usec, failed);
    if failed {
        db.counters.error_replies.fetch_add(1, Ordering::Relaxed);
    }
    if db.slowlog.is_slow(usec) {
        let (addr, name) = db.client_addr_and_name(client);
        if let Some(unlogged) = db.slowlog.take_log_line() {
            tracing::info!(
                command = spec.name,
                duration_us = usec,
                slow_commands_not_logged = unlogged,
                "slow command"
            );
        }
        db.slowlog.push(args, usec, addr, name);
    }
    db.latency.add("command", usec / 1000);
}

/// Runs MULTI's queued commands on one view, each atomically ([`TxnView::run`]), counting each
/// as a call of its own in `stats` (INFO commandstats, as Redis counts them) if given. If their
/// writes outgrow one batch, or their replies [`EXEC_REPLY_BYTES_MAX`], none is kept: the
/// transaction is discarded with `EXECABORT`.
pub(crate) fn exec_queued(
    view: &mut TxnView<'_, '_>,
    queued: &[(&'static Spec, Vec<Bytes>)],
    stats: Option<&[crate::cmd::CommandStats]>,
) -> Reply {
    let mut replies = Vec::with_capacity(queued.len());
    let mut reply_bytes = 0;
    for (spec, args) in queued {
        let ran = Instant::now();
        let reply = view.run(|view| match spec.handler {
            Handler::Read(f) => f(view, args),
            Handler::Write(apply) => apply(view, args),
            Handler::Pure(f) => f(args),
            // UNWATCH, the one session command queued: EXEC unwatches anyway.
            Handler::Session => Reply::OK,
        });
        if let Some(stats) = stats {
            stats[spec.index].ran(micros_since(ran), reply.is_error());
        }
        if view.overflowed {
            view.txn.discard();
            return exec_abort(&reply);
        }
        reply_bytes += reply.value_bytes();
        if reply_bytes > EXEC_REPLY_BYTES_MAX {
            view.txn.discard();
            return exec_abort(&Reply::error(format!(
                "ERR its replies would carry more than {EXEC_REPLY_BYTES_MAX} bytes of values"
            )));
        }
        replies.push(reply);
    }
    Reply::Array(replies)
}

/// EXEC's reply when a queued command's error discards the whole transaction, as Redis words it.
fn exec_abort(cause: &Reply) -> Reply {
    let text = match cause {
        Reply::Error(text) => text.as_bytes().strip_prefix(b"ERR ").unwrap_or(text.as_bytes()),
        _ => b"",
    };
    Reply::error([&b"EXECABORT Transaction discarded because of: "[..], text].concat())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use ferrocask::Store;

    use super::*;
    use crate::protocol::{Limits, Parser};

    fn session(dir: &std::path::Path) -> Session {
        let store = Arc::new(Store::open(dir).unwrap());
        store.put(b"big", vec![1u8; 1 << 20]).unwrap();
        Session::new(Arc::new(Db::for_tests(store)), 1)
    }

    fn run(session: &mut Session, words: &[&str]) -> Reply {
        match session.handle(words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()) {
            Outcome::Now(reply) => reply,
            _ => panic!("{words:?} answers at once"),
        }
    }

    /// Regression (issue 21, item 5): `WATCH big` x400 kept 400 copies of the value (400 MB).
    /// Now a WATCHed key keeps its name and one number.
    #[test]
    fn regression_watch_keeps_a_version_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path());
        for _ in 0..400 {
            assert_eq!(run(&mut s, &["WATCH", "big"]), Reply::OK);
        }
        let held: usize = s.watched.iter().map(|(key, version)| key.len() + std::mem::size_of_val(version)).sum();
        assert_eq!(s.watched.len(), 400);
        assert!(held <= 400 * 32, "{held} bytes held for 400 WATCHes");
        assert!(
            s.watched.iter().all(|(_, v)| matches!(v, Watched::Version(Some(_)))),
            "the key's version, read at WATCH"
        );
    }

    /// Regression (issue 21, item 5): a queued command's arguments were slices of the read
    /// buffer, so each queued command (or WATCHed key) kept a whole 16 KiB buffer alive (+80 MB
    /// per 20k). Now they own copies outside it.
    #[test]
    fn regression_queued_commands_and_watched_keys_do_not_pin_the_read_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = session(dir.path());
        let mut input = BytesMut::with_capacity(16 << 10);
        input.extend_from_slice(
            b"*2\r\n$5\r\nWATCH\r\n$3\r\nkey\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        );
        let buffer = input.as_ptr() as usize..input.as_ptr() as usize + input.capacity();
        let inside = |b: &Bytes| buffer.contains(&(b.as_ptr() as usize));
        let (limits, mut parser) = (Limits::default(), Parser::default());
        for _ in 0..3 {
            let args = parser.next_request(&mut input, &limits, true).unwrap().unwrap();
            assert!(args.iter().any(inside), "the parser hands out slices of the buffer");
            assert!(matches!(s.handle(args), Outcome::Now(_)));
        }
        assert!(!s.watched.iter().any(|(key, _)| inside(key)), "a WATCHed key pins the buffer");
        let queued = &s.multi.as_ref().unwrap().queued;
        assert_eq!(queued.len(), 1);
        assert!(!queued[0].1.iter().any(inside), "a queued command pins the buffer");
    }
}
