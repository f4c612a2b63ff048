//! Parser and command dispatch without a network, for the fuzz target and its corpus replay:
//! bytes in as one connection would send them, replies out.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use ferrocask::Store;

use crate::db::Db;
use crate::protocol::{Limits, Parser};
use crate::session::{Outcome, Session};

/// Runs `input` as one client's byte stream against `store` (protocol, commands, MULTI/EXEC) and
/// returns the bytes the server would send. Writes are awaited one by one on this thread.
pub fn run_bytes(store: Arc<Store>, input: &[u8]) -> Vec<u8> {
    let db = Arc::new(Db::for_tests(store));
    let mut session = Session::new(db.clone(), 1);
    // As the server bounds them: a request's writes always fit one batch of the store.
    let request_bytes_max = crate::server::request_bytes_fitting(db.store.batch_bytes_max()).min(1 << 20);
    let limits = Limits { args_max: 1024, bulk_bytes_max: 1 << 16, request_bytes_max };
    let mut buf = BytesMut::from(input);
    let mut out = BytesMut::new();
    let mut parser = Parser::default();
    loop {
        let args = match parser.next_request(&mut buf, &limits, session.authenticated) {
            Ok(Some(args)) if args.is_empty() => continue,
            Ok(Some(args)) => args,
            Ok(None) => break,
            Err(e) => {
                crate::Reply::Error(e.0).encode(session.resp, &mut out);
                break;
            }
        };
        match session.handle(args) {
            Outcome::Now(reply) => reply.encode(session.resp, &mut out),
            Outcome::Several(replies) => replies.into_iter().for_each(|r| r.encode(session.resp, &mut out)),
            Outcome::Later(pending) => block_on(pending).encode(session.resp, &mut out),
            Outcome::Values(keys) => {
                let view = db.view();
                let values =
                    keys.iter().map(|k| crate::Reply::bulk_or_nil(crate::db::Read::get(&view, k).map(|(v, _)| v)));
                crate::Reply::Array(values.collect()).encode(session.resp, &mut out);
            }
            Outcome::Close(reply) => {
                reply.encode(session.resp, &mut out);
                break;
            }
            Outcome::Hangup => break,
        }
    }
    out.to_vec()
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
