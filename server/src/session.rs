//! One client's session: protocol version, authentication, name, MULTI queue and WATCHed keys;
//! turns each request into a reply now or a reply once its write is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::cmd::parse::is;
use crate::cmd::{self, Handler, Spec};
use crate::db::{store_error, Db, Entry, Read, TxnView};
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
}

/// How many keys one FLUSHDB transaction deletes: a transaction's records must fit in one frame.
const FLUSH_KEYS_PER_TXN: usize = 1000;

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
    watched: Vec<(Bytes, Option<Entry>)>,
}

impl Session {
    pub(crate) fn new(db: Arc<Db>, id: u64) -> Session {
        let authenticated = db.password.is_none();
        Session { db, id, resp: 2, authenticated, name: Vec::new(), multi: None, watched: Vec::new() }
    }

    /// Whether the request reads what earlier writes of this connection may have changed, so
    /// their replies must come first. Writes queue behind each other in the store's log order, so
    /// a run of pipelined writes shares group commits instead of waiting one by one.
    pub(crate) fn must_wait_for_writes(&self, args: &[Bytes]) -> bool {
        match cmd::lookup(&args[0]) {
            Some(spec) => !(spec.writes() || self.multi.is_some() || spec.name == "exec"),
            None => false,
        }
    }

    /// Runs one request (non-empty).
    pub(crate) fn handle(&mut self, args: Vec<Bytes>) -> Outcome {
        self.db.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
        let Some(spec) = cmd::lookup(&args[0]) else {
            self.fail_multi();
            return Outcome::Now(cmd::unknown_command(&args));
        };
        if !spec.arity_ok(args.len()) {
            self.fail_multi();
            return Outcome::Now(cmd::wrong_arity(spec.name));
        }
        if !self.authenticated && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
            self.fail_multi();
            return Outcome::Now(Reply::error("NOAUTH Authentication required."));
        }
        if self.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            return Outcome::Now(self.queue(spec, args));
        }
        match spec.handler {
            Handler::Read(f) => Outcome::Now(f(&self.db.view(), &args)),
            Handler::Pure(f) => Outcome::Now(f(&args)),
            Handler::Write(apply) if spec.lists_keys => self.flush(apply, args),
            Handler::Write(apply) => self.write(apply, args),
            Handler::Session => self.session_command(spec, args),
        }
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
        multi.queued.push((spec, args));
        Reply::Status("QUEUED")
    }

    /// A write: one store transaction, replied to once durable.
    fn write(&self, apply: fn(&mut dyn crate::db::Write, &[Bytes]) -> Reply, args: Vec<Bytes>) -> Outcome {
        let limit = self.db.value_bytes_max;
        let future = self.db.store.transaction_async(move |txn| {
            let mut view = TxnView::new(txn, &[], limit);
            apply(&mut view, &args)
        });
        Outcome::Later(Box::pin(async move { future.await.unwrap_or_else(store_error) }))
    }

    /// FLUSHDB and FLUSHALL: the keys listed now, deleted in transactions of bounded size.
    fn flush(&self, apply: fn(&mut dyn crate::db::Write, &[Bytes]) -> Reply, args: Vec<Bytes>) -> Outcome {
        let keys = self.db.view().keys();
        let limit = self.db.value_bytes_max;
        let mut chunks: Vec<Vec<Vec<u8>>> = keys.chunks(FLUSH_KEYS_PER_TXN).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let mut futures = Vec::new();
        for chunk in chunks {
            let args = args.clone();
            futures.push(self.db.store.transaction_async(move |txn| {
                let mut view = TxnView::new(txn, &chunk, limit);
                apply(&mut view, &args)
            }));
        }
        Outcome::Later(Box::pin(async move {
            let mut last = Reply::OK;
            for future in futures {
                last = future.await.unwrap_or_else(store_error);
                if last.is_error() {
                    return last;
                }
            }
            last
        }))
    }

    fn session_command(&mut self, spec: &Spec, args: Vec<Bytes>) -> Outcome {
        let reply = match spec.name {
            "quit" => return Outcome::Close(Reply::OK),
            "exec" => return self.exec(),
            "multi" => self.multi_start(),
            "discard" => self.discard(),
            "watch" => self.watch(&args),
            "unwatch" => {
                self.watched.clear();
                Reply::OK
            }
            "reset" => self.reset(),
            "auth" => self.auth(&args),
            "hello" => self.hello(&args),
            "client" => server_cmds::client(self, &args),
            "command" => server_cmds::command(&args),
            "info" => server_cmds::info(&self.db, &args),
            "config" => server_cmds::config(&self.db, &args),
            other => unreachable!("{other} has a session handler"),
        };
        Outcome::Now(reply)
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

    fn watch(&mut self, args: &[Bytes]) -> Reply {
        if self.multi.is_some() {
            return Reply::error("ERR WATCH inside MULTI is not allowed");
        }
        let view = self.db.view();
        for key in &args[1..] {
            let state = view.get(key);
            self.watched.push((key.clone(), state));
        }
        Reply::OK
    }

    /// EXEC: every queued command in one store transaction, so its writes commit as one batch;
    /// nothing is written (nil reply) if a WATCHed key changed since WATCH.
    fn exec(&mut self) -> Outcome {
        let Some(multi) = self.multi.take() else {
            return Outcome::Now(Reply::error("ERR EXEC without MULTI"));
        };
        let watched = std::mem::take(&mut self.watched);
        if multi.failed {
            return Outcome::Now(Reply::error("EXECABORT Transaction discarded because of previous errors."));
        }
        let snapshot =
            if multi.queued.iter().any(|(spec, _)| spec.lists_keys) { self.db.view().keys() } else { Vec::new() };
        let limit = self.db.value_bytes_max;
        let future = self.db.store.transaction_async(move |txn| {
            let mut view = TxnView::new(txn, &snapshot, limit);
            if watched.iter().any(|(key, state)| view.get(key) != *state) {
                return Reply::NilArray;
            }
            let replies = multi.queued.iter().map(|(spec, args)| match spec.handler {
                Handler::Read(f) => f(&view, args),
                Handler::Write(apply) => apply(&mut view, args),
                Handler::Pure(f) => f(args),
                // UNWATCH, the one session command queued: EXEC unwatches anyway.
                Handler::Session => Reply::OK,
            });
            Reply::Array(replies.collect())
        });
        Outcome::Later(Box::pin(async move { future.await.unwrap_or_else(store_error) }))
    }

    fn reset(&mut self) -> Reply {
        self.multi = None;
        self.watched.clear();
        self.resp = 2;
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
            self.resp = v;
        }
        server_cmds::hello_reply(self)
    }
}
