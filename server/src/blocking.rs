//! The clients blocked in BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX, by key.
//!
//! A blocked client never pops here: it waits, and when woken it runs its pop again as a write
//! of its own (one store transaction, or one log entry on a cluster member), exactly like LPOP,
//! so the element's removal is durable before its reply, and a client that goes away has taken
//! nothing. The registry only decides whom to wake.
//!
//! Each key has its waiters in arrival order. A write that saves a list's or sorted set's meta
//! record (every push, ZADD, LMOVE's target, a MULTI's writes: [`TxnView`](crate::db::TxnView)
//! calls [`Blocking::wrote`], on a single node and in a cluster member's state machine alike)
//! wakes the **head** waiter of that key only. A waiter that leaves the registry (it popped,
//! timed out, was unblocked, or its connection closed) wakes the new head of each of its keys,
//! which runs its pop again: so elements go to waiters oldest first, one after the other, and
//! one element pushed wakes one waiter. A woken waiter that finds the key of the other type
//! (a list waiter on a sorted set) wakes the waiter behind it ([`Waiter::pass`]), as Redis skips
//! it. A wake-up is a [`Notify`] permit: one that arrives while its waiter is running its pop
//! is kept, and the waiter tries again, so no push is missed.
//!
//! Lock order: the registry's mutex is taken alone; notifying under it never waits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// How a waiter was ended by CLIENT UNBLOCK.
pub(crate) const UNBLOCKED_TIMEOUT: u8 = 1;
/// CLIENT UNBLOCK ... ERROR.
pub(crate) const UNBLOCKED_ERROR: u8 = 2;

/// One blocked client, as the registry holds it.
#[derive(Debug, Default)]
pub(crate) struct WaiterState {
    /// Woken by a write to one of its keys, by the waiter before it, or by CLIENT UNBLOCK.
    pub(crate) wake: Notify,
    /// 0, or how CLIENT UNBLOCK ended the wait.
    pub(crate) unblocked: AtomicU8,
}

#[derive(Default)]
struct Queues {
    /// Each key's waiters, oldest first: (client id, state).
    by_key: HashMap<Bytes, VecDeque<(u64, Arc<WaiterState>)>>,
    /// The blocked clients, by id (CLIENT UNBLOCK).
    by_client: HashMap<u64, Arc<WaiterState>>,
}

/// The registry every connection shares (one per server).
#[derive(Default)]
pub(crate) struct Blocking {
    queues: Mutex<Queues>,
    /// The registered clients; 0 lets a write skip the lock.
    registered: AtomicUsize,
    /// The clients waiting (INFO `blocked_clients`): registered, and their first try found
    /// nothing (a pop possible at once never counts as blocked, as in Redis).
    waiting: AtomicUsize,
}

impl Blocking {
    /// The clients blocked now.
    pub(crate) fn blocked_clients(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A write saved the collection at `key`: wakes its oldest waiter. What a write costs when
    /// no client is blocked: one relaxed load.
    pub(crate) fn wrote(&self, key: &[u8]) {
        if self.registered.load(Ordering::Relaxed) == 0 {
            return;
        }
        let queues = self.queues.lock();
        if let Some((_, head)) = queues.by_key.get(key).and_then(VecDeque::front) {
            head.wake.notify_one();
        }
    }

    /// Registers client `id` as waiting on `keys`, behind the clients already waiting on them.
    pub(crate) fn register(self: &Arc<Self>, id: u64, keys: Vec<Bytes>) -> Waiter {
        let state = Arc::new(WaiterState::default());
        let mut queues = self.queues.lock();
        for key in &keys {
            queues.by_key.entry(key.clone()).or_default().push_back((id, state.clone()));
        }
        queues.by_client.insert(id, state.clone());
        self.registered.fetch_add(1, Ordering::Relaxed);
        Waiter { registry: self.clone(), id, keys, state, waiting: false }
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait (`how`: [`UNBLOCKED_TIMEOUT`] or
    /// [`UNBLOCKED_ERROR`]); whether it was blocked.
    pub(crate) fn unblock(&self, id: u64, how: u8) -> bool {
        let queues = self.queues.lock();
        let Some(state) = queues.by_client.get(&id) else { return false };
        state.unblocked.store(how, Ordering::Relaxed);
        state.wake.notify_one();
        true
    }
}

/// A client's place in the registry: left, and the next waiters woken, when dropped (whatever
/// ended the wait, a closed connection included).
pub(crate) struct Waiter {
    registry: Arc<Blocking>,
    id: u64,
    keys: Vec<Bytes>,
    pub(crate) state: Arc<WaiterState>,
    /// Whether it is counted as blocked ([`Waiter::blocks`]).
    waiting: bool,
}

impl Waiter {
    /// Counts this client as blocked (once): its first try found nothing.
    pub(crate) fn blocks(&mut self) {
        if !self.waiting {
            self.waiting = true;
            self.registry.waiting.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wakes the waiter right behind this one on each of its keys: this one could not use what
    /// is there (the key holds the other type), as Redis skips such a client.
    pub(crate) fn pass(&self) {
        let queues = self.registry.queues.lock();
        for key in &self.keys {
            let Some(queue) = queues.by_key.get(key) else { continue };
            let behind = queue.iter().skip_while(|(id, _)| *id != self.id).nth(1);
            if let Some((_, next)) = behind {
                next.wake.notify_one();
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut queues = self.registry.queues.lock();
        for key in &self.keys {
            let Some(queue) = queues.by_key.get_mut(key) else { continue };
            let was_head = queue.front().is_some_and(|(id, _)| *id == self.id);
            queue.retain(|(id, _)| *id != self.id);
            match queue.front() {
                None => {
                    queues.by_key.remove(key);
                }
                Some((_, head)) if was_head => head.wake.notify_one(),
                Some(_) => {}
            }
        }
        queues.by_client.remove(&self.id);
        self.registry.registered.fetch_sub(1, Ordering::Relaxed);
        if self.waiting {
            self.registry.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    /// Whether `waiter` holds a wake-up permit (consumes it).
    fn woken(waiter: &Waiter) -> bool {
        use std::future::Future;
        let notified = waiter.state.wake.notified();
        let mut notified = std::pin::pin!(notified);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        notified.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn a_write_wakes_the_head_waiter_only() {
        let registry = Arc::new(Blocking::default());
        let mut first = registry.register(1, vec![key("q")]);
        let second = registry.register(2, vec![key("q")]);
        assert_eq!(registry.blocked_clients(), 0, "registered, not yet waiting");
        first.blocks();
        first.blocks();
        assert_eq!(registry.blocked_clients(), 1);
        registry.wrote(b"q");
        assert!(woken(&first));
        assert!(!woken(&second));
    }

    #[test]
    fn a_head_that_leaves_wakes_the_next() {
        let registry = Arc::new(Blocking::default());
        let first = registry.register(1, vec![key("q")]);
        let mut second = registry.register(2, vec![key("q")]);
        second.blocks();
        drop(first);
        assert!(woken(&second));
        drop(second);
        assert_eq!(registry.blocked_clients(), 0);
        assert_eq!(registry.registered.load(Ordering::Relaxed), 0);
        assert!(registry.queues.lock().by_key.is_empty(), "an empty queue is removed");
    }

    #[test]
    fn pass_wakes_the_waiter_behind() {
        let registry = Arc::new(Blocking::default());
        let first = registry.register(1, vec![key("q")]);
        let second = registry.register(2, vec![key("q")]);
        first.pass();
        assert!(!woken(&first));
        assert!(woken(&second));
    }

    #[test]
    fn unblock_sets_how_and_wakes() {
        let registry = Arc::new(Blocking::default());
        let waiter = registry.register(7, vec![key("q")]);
        assert!(registry.unblock(7, UNBLOCKED_ERROR));
        assert!(!registry.unblock(8, UNBLOCKED_ERROR));
        assert!(woken(&waiter));
        assert_eq!(waiter.state.unblocked.load(Ordering::Relaxed), UNBLOCKED_ERROR);
    }
}
