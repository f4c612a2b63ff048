//! A connection's outbox: frames other connections make for it (MONITOR lines, pub/sub
//! messages), queued until its own task writes them, bounded in bytes.
//!
//! The sending side never waits: a frame is counted and queued, or, if the frames queued and not
//! yet taken would pass [`OUTBOX_BYTES_MAX`], the outbox closes for good, its connection is
//! killed (as Redis closes a client past its `client-output-buffer-limit`) and one log line says
//! so. So a client that stops reading costs the server at most the bound (plus what the
//! connection took into its own output buffer, itself bounded), and whoever feeds it (a PUBLISH,
//! any command seen by a MONITOR) is never slowed by it.
//!
//! One outbox per connection, shared by MONITOR and pub/sub: it is the connection's one queue of
//! frames it did not ask for, and the bound is on what the connection holds, not per feature.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::db::Kill;

/// The most bytes of frames an outbox may hold not yet taken by its connection; past it the
/// connection is closed. Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`, in its
/// simplest honest form: the hard limit only (no soft limit over time).
pub const OUTBOX_BYTES_MAX: usize = 32 << 20;

/// What both sides share.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes queued and not yet taken.
    queued: AtomicUsize,
    /// Set once the bound was passed: nothing more is queued.
    closed: AtomicBool,
}

/// The sending side, cloned by every feed (the MONITOR list, the pub/sub registry).
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    client: u64,
    frames: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
    kill: Arc<Kill>,
}

/// The receiving side, read by the connection's task.
#[derive(Debug)]
pub(crate) struct OutboxReader {
    frames: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
}

/// A new outbox for connection `client`, which `kill` closes.
pub(crate) fn outbox(client: u64, kill: Arc<Kill>) -> (Outbox, OutboxReader) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    (Outbox { client, frames: tx, shared: shared.clone(), kill }, OutboxReader { frames: rx, shared })
}

impl Outbox {
    /// Queues `frame` for the connection; `false` if the outbox is closed (its connection has
    /// gone, or this frame or an earlier one would have passed [`OUTBOX_BYTES_MAX`]: then the
    /// connection is killed, and the first such frame logs why, naming `what` fed it).
    pub(crate) fn send(&self, frame: Bytes, what: &'static str) -> bool {
        if self.shared.closed.load(Ordering::Relaxed) {
            return false;
        }
        let queued = self.shared.queued.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        if queued > OUTBOX_BYTES_MAX {
            if !self.shared.closed.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    client = self.client,
                    feed = what,
                    queued_bytes_max = OUTBOX_BYTES_MAX,
                    "closing a client that does not read its output fast enough (output buffer limit)"
                );
                self.kill.kill();
            }
            return false;
        }
        self.frames.send(frame).is_ok()
    }

    /// The connection this outbox is for.
    pub(crate) fn client(&self) -> u64 {
        self.client
    }
}

impl OutboxReader {
    /// The next frame; never resolves once every sender is gone.
    pub(crate) async fn next(&mut self) -> Bytes {
        match self.frames.recv().await {
            Some(frame) => self.taken(frame),
            None => std::future::pending().await,
        }
    }

    /// The next frame if one is queued.
    pub(crate) fn try_next(&mut self) -> Option<Bytes> {
        let frame = self.frames.try_recv().ok()?;
        Some(self.taken(frame))
    }

    fn taken(&self, frame: Bytes) -> Bytes {
        self.shared.queued.fetch_sub(frame.len(), Ordering::Relaxed);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_past_its_bound_closes_and_kills_its_connection() {
        let kill = Arc::new(Kill::default());
        let (outbox, mut reader) = outbox(7, kill.clone());
        let frame = Bytes::from(vec![b'x'; 1 << 20]);
        for _ in 0..OUTBOX_BYTES_MAX >> 20 {
            assert!(outbox.send(frame.clone(), "test"), "within the bound");
        }
        assert!(!kill.is_killed());
        assert!(!outbox.send(frame.clone(), "test"), "past the bound");
        assert!(kill.is_killed(), "the connection is closed");
        assert!(reader.try_next().is_some());
        assert!(!outbox.send(Bytes::from_static(b"x"), "test"), "closed for good, even with room again");
    }

    #[test]
    fn frames_taken_make_room() {
        let kill = Arc::new(Kill::default());
        let (outbox, mut reader) = outbox(7, kill.clone());
        let frame = Bytes::from(vec![b'x'; 1 << 20]);
        for _ in 0..4 * (OUTBOX_BYTES_MAX >> 20) {
            assert!(outbox.send(frame.clone(), "test"));
            assert_eq!(reader.try_next().map(|f| f.len()), Some(1 << 20));
        }
        assert!(!kill.is_killed(), "a reader that keeps up is never closed");
    }
}
