//! Applying a batch of log entries: one store transaction per command, each at the entry's time
//! and each writing the applied position with the command's effect.
//!
//! `plan` turns entries into steps without I/O (which commands still to run, at what time, and
//! the position each leaves behind); `run` queues every step's transaction at once (one group
//! commit can carry them all) and collects the replies in order. A command that answers
//! [`Applied::Continue`] stalls the steps queued after it (each checks a flag the leader's
//! in-order evaluation makes reliable, and writes nothing), and `run` queues again from it. A
//! command that panics, or leaves no room for the position, stalls them the same way and fails
//! the batch: no later command may claim a place in the log past one that is not applied.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferrocask::{Store, Txn, WriteFuture};
use openraft::{Entry, EntryPayload, StorageIOError};

use super::{encoded, Id, Membership, Position, TXN_RESERVED_BYTES};
use crate::keys::{MEMBERSHIP, POSITION};
use crate::types::{Applied, Apply};
use crate::{Response, StorageError, TypeConfig};

/// The header of the position's record (it has no expiry).
const POSITION_RECORD_HEADER_BYTES: usize = 16;

/// One transaction to run.
pub(super) struct Step {
    log_id: Id,
    /// The command and where its reply goes (entry of the batch, command of the entry); `None`
    /// for a step that only records a blank or membership entry.
    command: Option<(Arc<Vec<u8>>, usize, usize)>,
    /// The time the transaction runs at.
    at_ms: u64,
    /// The encoded position to write once the step is done.
    position: Arc<Vec<u8>>,
    /// The encoded membership to write with it, for a membership entry.
    membership: Option<Arc<Vec<u8>>>,
}

/// The steps that apply `entries` from position `start`, the responses to fill, and the position
/// after the last step.
pub(super) fn plan(
    entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    start: &Position,
) -> Result<(Vec<Step>, Vec<Response>, Position), StorageError> {
    let mut pos = start.clone();
    let mut steps = Vec::new();
    let mut responses = Vec::new();
    for (e, entry) in entries.into_iter().enumerate() {
        let log_id = entry.log_id;
        if pos.applied.is_some_and(|applied| applied.index >= log_id.index) {
            return Err(apply_err(log_id, format!("applied up to {:?} already", pos.applied)));
        }
        let done = commands_done(&pos, log_id)?;
        match entry.payload {
            EntryPayload::Normal(request) => {
                let n = request.commands.len();
                // Time never goes back, whatever the leader's clock did.
                let at_ms = request.now_ms.max(pos.clock_ms);
                responses.push(Response { replies: vec![Vec::new(); n] });
                if done >= n {
                    pos = Position { applied: Some(log_id), partial: None, clock_ms: at_ms };
                    steps.push(meta_step(log_id, &pos, None)?);
                }
                for (k, command) in request.commands.into_iter().enumerate().skip(done) {
                    pos = if k + 1 == n {
                        Position { applied: Some(log_id), partial: None, clock_ms: at_ms }
                    } else {
                        Position { applied: pos.applied, partial: Some((log_id, k as u64 + 1)), clock_ms: at_ms }
                    };
                    let position = Arc::new(encoded(&pos).map_err(|e| StorageIOError::apply(log_id, e))?);
                    assert!(
                        POSITION.len() + position.len() + POSITION_RECORD_HEADER_BYTES <= TXN_RESERVED_BYTES,
                        "the position's record fits in the bytes reserved for it: {} bytes of value",
                        position.len()
                    );
                    let command = Some((Arc::new(command), e, k));
                    steps.push(Step { log_id, command, at_ms, position, membership: None });
                }
            }
            EntryPayload::Blank => {
                responses.push(Response::default());
                pos = Position { applied: Some(log_id), partial: None, clock_ms: pos.clock_ms };
                steps.push(meta_step(log_id, &pos, None)?);
            }
            EntryPayload::Membership(membership) => {
                responses.push(Response::default());
                pos = Position { applied: Some(log_id), partial: None, clock_ms: pos.clock_ms };
                let stored = Membership::new(Some(log_id), membership);
                steps.push(meta_step(log_id, &pos, Some(&stored))?);
            }
        }
    }
    Ok((steps, responses, pos))
}

/// How many commands of the entry `log_id` are already applied: those the position records as
/// done if it stopped inside this very entry, else none.
fn commands_done(pos: &Position, log_id: Id) -> Result<usize, StorageError> {
    match pos.partial {
        None => Ok(0),
        Some((partial, k)) if partial == log_id => Ok(usize::try_from(k).expect("a command count fits usize")),
        Some((partial, _)) => Err(apply_err(
            log_id,
            format!("the entry {partial} is applied in part, so the next entry to apply is it, not {log_id}"),
        )),
    }
}

fn apply_err(log_id: Id, message: String) -> StorageError {
    StorageIOError::apply(log_id, openraft::AnyError::error(message)).into()
}

fn meta_step(log_id: Id, pos: &Position, membership: Option<&Membership>) -> Result<Step, StorageError> {
    let fail = |e| StorageIOError::apply(log_id, e);
    let position = Arc::new(encoded(pos).map_err(fail)?);
    let membership = match membership {
        Some(m) => Some(Arc::new(encoded(m).map_err(fail)?)),
        None => None,
    };
    Ok(Step { log_id, command: None, at_ms: pos.clock_ms, position, membership })
}

/// What one step's transaction did.
enum Outcome {
    /// The command replied (or the entry was recorded); the position moved past it.
    Done(Option<Vec<u8>>),
    /// The command filled its transaction; the position did not move.
    Continue,
    /// An earlier step of the same round answered `Continue` or failed: nothing was written.
    Stalled,
    /// The application panicked: nothing was written.
    Panicked(String),
}

/// Runs `steps` in order, filling `responses` with the commands' replies.
pub(super) async fn run(
    store: &Store,
    apply: &Arc<dyn Apply>,
    steps: &[Step],
    responses: &mut [Response],
) -> Result<(), StorageError> {
    let mut from = 0;
    while from < steps.len() {
        let stall = Arc::new(AtomicBool::new(false));
        let queued: Vec<_> = steps[from..].iter().map(|step| queue(store, apply, step, &stall)).collect();
        let mut resume = None;
        for (i, (step, write)) in steps[from..].iter().zip(queued).enumerate() {
            let outcome = write
                .await
                .and_then(|r| r)
                .map_err(|e| StorageIOError::apply(step.log_id, openraft::AnyError::new(&e)))?;
            match outcome {
                Outcome::Done(reply) => {
                    assert!(resume.is_none(), "no step after a Continue of its round is done");
                    if let (Some(reply), Some((_, e, k))) = (reply, &step.command) {
                        responses[*e].replies[*k] = reply;
                    }
                }
                Outcome::Continue => resume = Some(from + i),
                Outcome::Stalled => assert!(resume.is_some(), "a step stalls only behind a Continue"),
                Outcome::Panicked(message) => {
                    return Err(apply_err(step.log_id, format!("the application panicked: {message}")));
                }
            }
        }
        match resume {
            Some(step) => from = step,
            None => break,
        }
    }
    Ok(())
}

/// Queues `step`'s transaction at its time.
fn queue(
    store: &Store,
    apply: &Arc<dyn Apply>,
    step: &Step,
    stall: &Arc<AtomicBool>,
) -> WriteFuture<ferrocask::Result<Outcome>> {
    let apply = Arc::clone(apply);
    let stall = Arc::clone(stall);
    let command = step.command.as_ref().map(|(command, _, _)| Arc::clone(command));
    let (position, membership) = (Arc::clone(&step.position), step.membership.clone());
    store.transaction_async_at(step.at_ms, move |txn: &mut Txn<'_>| {
        // The leader evaluates transactions in queue order, so every step queued after a
        // Continue sees the flag it set.
        if stall.load(Ordering::Acquire) {
            return Ok(Outcome::Stalled);
        }
        // The command may fill the transaction only up to the room the position needs.
        txn.reserve_bytes(TXN_RESERVED_BYTES);
        let reply = match command.map(|command| catch_unwind(AssertUnwindSafe(|| apply.apply(txn, &command)))) {
            Some(Ok(Applied::Reply(reply))) => Some(reply),
            Some(Ok(Applied::Continue)) => {
                stall.store(true, Ordering::Release);
                return Ok(Outcome::Continue);
            }
            Some(Err(panic)) => {
                stall.store(true, Ordering::Release);
                txn.discard();
                return Ok(Outcome::Panicked(panic_message(&*panic)));
            }
            None => None,
        };
        txn.reserve_bytes(0);
        let recorded = txn.put(POSITION, &*position).and_then(|()| match &membership {
            Some(m) => txn.put(MEMBERSHIP, &**m),
            None => Ok(()),
        });
        if let Err(e) = recorded {
            // Cannot happen while the position fits in `TXN_RESERVED_BYTES` (asserted where it
            // is encoded): write nothing rather than a command without its position.
            stall.store(true, Ordering::Release);
            txn.discard();
            return Err(e);
        }
        Ok(Outcome::Done(reply))
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "a panic without a message".to_string(),
    }
}
