//! The group-commit writer.
//!
//! Protocol (DESIGN.md, "Write path and group commit"):
//! 1. A writer encodes its records outside any lock, then queues them with a ticket.
//! 2. If no leader is active, it becomes the leader; otherwise it waits until its ticket is done.
//! 3. The leader takes queued operations in ticket order (as many as fit in one frame), runs the
//!    transactions among them in that order (`log/txn.rs`), stamps sequence numbers, writes them
//!    as one frame with one `write_at`, and syncs once.
//! 4. Only then does it publish the records to the index, in log order, mark the tickets done
//!    (the durable watermark) and wake the waiters. One of them leads the next group.
//!
//! Futures (`Writer::submit`) queue the same way but never lead: the async driver thread
//! (`Writer::drive`) leads whenever operations are queued and no one else does, so no caller's
//! thread blocks for a group.
//!
//! A lone writer leads its own group at once and never waits. Groups are written, synced and
//! published strictly one after another, so the index always ends with the record that comes last
//! in the log. A group is published with every index stripe it touches write-locked at once
//! (`Index::publish`), so a reader that sees any record of a group sees all of it.
//!
//! Reentrancy: transactions run on the leader's thread (`Writer::evaluate`), which marks itself
//! as evaluating this writer's group for as long as they run. Every call that would queue an
//! operation or wait for the writer checks that mark first (`Writer::refuse_writes`) and fails
//! with `Error::Reentrant`: from there it would wait for the group it is part of, for ever. The
//! mark is per writer, so a transaction may still write to another store.
//!
//! Poisoning is the I/O layer's latch (`io/checked.rs`): once it has tripped, nobody becomes
//! leader again, every queued operation fails with `Error::Poisoned`, and nothing more is
//! acknowledged. Leadership is panic-safe: a leader that panics trips the latch and fails its group
//! instead of leaving the others waiting for ever.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::clock::Clock;
use crate::format::{
    decode_frame, encode_manifest, finish_frame, stamp_seq, FrameSalt, SegmentHeader, SegmentKind,
    COMPACTED_FRAME_GROUP, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::index::{Index, Published};
use crate::io::Latch;
use crate::log::encoded::{Encoded, Placed};
use crate::log::queue::{Completed, Done, Op, Pending, Queue, Slot};
use crate::log::txn::{Limits, Overlay, Txn};
use crate::log::{fresh_salt, map_len, LogDir, Segment, SegmentPool, SegmentSet, MANIFEST_FILE};
use crate::options::{Options, SyncMode};
use crate::{Error, Result};

/// The first zero-filled step of a new active segment, in bytes. Each later step is as long as
/// the file already is (rounded up to a power of two), up to `Options::preallocate_bytes`: a
/// store holding a few keys takes this much, not a whole step, and a segment that fills costs
/// log2(`preallocate_bytes` / this) more growth syncs than fixed steps would (8 with the
/// defaults: 9 steps to reach 4 MiB instead of 1, 24 per 64 MiB segment instead of 16).
pub(crate) const PREALLOCATE_FIRST_BYTES: u64 = 16 << 10;

/// The length to grow a file of `file_len` bytes to so that it holds `end` bytes: a multiple
/// of the step, where the step is the file's length rounded up to a power of two, at least
/// `PREALLOCATE_FIRST_BYTES` and at most `step_max` (the file doubles until its steps reach
/// `step_max`), never past `segment_bytes` unless `end` is.
fn grown_len(file_len: u64, end: u64, step_max: u64, segment_bytes: u64) -> u64 {
    let step = file_len.next_power_of_two().max(PREALLOCATE_FIRST_BYTES).min(step_max).max(1);
    end.div_ceil(step).saturating_mul(step).min(segment_bytes).max(end)
}

thread_local! {
    /// The writer (by address) whose transactions this thread is running, 0 if none: the one
    /// thread-local every write reads. A `Cell` of a plain integer, so that reading it is a
    /// single load (no lazy initialisation, no destructor to register).
    static EVALUATING: Cell<usize> = const { Cell::new(0) };
    /// The writers whose transactions this thread was already running when it began the
    /// current one's, innermost last: only when a transaction of one store writes to another
    /// store and this thread then leads that store's group too. Read only when `EVALUATING` is
    /// set.
    static EVALUATING_OUTER: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as running `writer`'s transactions until dropped, also when a closure's
/// panic unwinds past it: a mark left behind would refuse every later write of this thread.
struct Evaluating;

impl Evaluating {
    fn enter(writer: &Writer) -> Evaluating {
        let outer = EVALUATING.replace(writer.identity());
        if outer != 0 {
            EVALUATING_OUTER.with(|o| o.borrow_mut().push(outer));
        }
        Evaluating
    }

    /// Whether this thread is running `writer`'s transactions, at any depth. Inline: on the
    /// write path it is one thread-local load and a comparison with zero.
    #[inline]
    fn includes(writer: &Writer) -> bool {
        let innermost = EVALUATING.get();
        innermost != 0 && (innermost == writer.identity() || Evaluating::outer_includes(writer))
    }

    /// Whether `writer` is among the outer writers (see `EVALUATING_OUTER`).
    #[cold]
    fn outer_includes(writer: &Writer) -> bool {
        let me = writer.identity();
        // A thread whose thread-locals are already destroyed (a store used from another
        // thread-local's destructor) runs no transaction.
        EVALUATING_OUTER.try_with(|o| o.borrow().contains(&me)).unwrap_or(false)
    }
}

impl Drop for Evaluating {
    fn drop(&mut self) {
        let outer = EVALUATING_OUTER.try_with(|o| o.borrow_mut().pop()).ok().flatten();
        EVALUATING.set(outer.unwrap_or(0));
    }
}

/// The tail of the log, owned by whoever holds `Writer::log`.
#[derive(Debug)]
pub(crate) struct ActiveLog {
    pub(crate) segment: Arc<Segment>,
    /// Where the next frame goes.
    pub(crate) tail: u64,
    /// The file's length: zero-filled space past `tail` is already allocated and synced.
    pub(crate) file_len: u64,
    /// The group number the next frame carries. It moves on after every sync that covered a
    /// write, so a valid frame of a later group proves every earlier frame was synced.
    pub(crate) group: u64,
    /// Frames were written since the last sync (write-back mode only).
    pub(crate) dirty: bool,
    /// Records written since the last sync (write-back mode only), counted as written once synced.
    pub(crate) unsynced_records: u64,
    /// The sequence number of the next record.
    pub(crate) next_seq: u64,
    /// Bytes other than zeros may follow `tail`: a failed append may have left bytes of its
    /// frame there, or the segment is a reused file (`log/pool.rs`) whose old contents follow.
    /// They must go before the segment is sealed: recovery treats anything but zeros after a
    /// sealed segment's last frame as corruption.
    pub(crate) unclean_tail: bool,
}

/// Where [`Writer::append`] wrote a frame.
struct Appended {
    offset: u64,
    len: u64,
    /// The sequence number of its first record.
    first_seq: u64,
}

/// Counters for `Store::stats`.
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    pub(crate) syncs: AtomicU64,
    /// Records made durable by a sync of the log (in write-back mode, counted when synced).
    pub(crate) synced_records: AtomicU64,
    pub(crate) frames: AtomicU64,
    /// Bytes of frames appended to the log (what users wrote, framing included).
    pub(crate) bytes: AtomicU64,
}

pub(crate) struct Writer {
    queue: Mutex<Queue>,
    /// Blocked writers wait here for their ticket (or to lead).
    wake: Condvar,
    /// The async driver waits here for operations that nobody leads.
    drive: Condvar,
    pub(crate) log: Mutex<ActiveLog>,
    pub(crate) stats: WriterStats,
    /// Segments sealed by roll-overs, waiting for the maintenance thread (hint files).
    sealed: Mutex<Vec<u64>>,
    sealed_flag: AtomicBool,
    /// The store's poison latch: set by the I/O layer on the first failure that leaves what is
    /// durable unknown, and by a panicking leader.
    latch: Arc<Latch>,
    dir: LogDir,
    /// Retired segment files kept for reuse as the next active segment.
    pub(crate) pool: Arc<SegmentPool>,
    /// The sync mode, switchable while open (`Writer::set_sync_mode`): 0 for `SyncMode::Always`,
    /// else `SyncMode::Every`'s interval in nanoseconds. Stored and read under `log`'s lock,
    /// which orders a switch against every group's append.
    sync_every_nanos: AtomicU64,
    segment_bytes: u64,
    preallocate_bytes: u64,
    /// Most live segments a roll-over may leave (`Options::live_segments_max`).
    live_segments_max: usize,
    frame_bytes_max: usize,
    /// What a transaction may write.
    limits: Limits,
    clock: Arc<dyn Clock>,
}

impl Writer {
    pub(crate) fn new(dir: LogDir, options: &Options, log: ActiveLog, latch: Arc<Latch>) -> Writer {
        Writer {
            queue: Mutex::new(Queue { next_ticket: 1, ..Queue::default() }),
            wake: Condvar::new(),
            drive: Condvar::new(),
            log: Mutex::new(log),
            stats: WriterStats::default(),
            sealed: Mutex::new(Vec::new()),
            sealed_flag: AtomicBool::new(false),
            latch,
            pool: Arc::new(SegmentPool::new(dir.clone(), options.recycle_segments)),
            dir,
            sync_every_nanos: AtomicU64::new(sync_every_nanos(options.sync)),
            segment_bytes: options.segment_bytes,
            preallocate_bytes: options.preallocate_bytes,
            live_segments_max: options.live_segments_max,
            frame_bytes_max: options.frame_bytes_max(),
            limits: Limits {
                key_bytes_max: options.key_bytes_max,
                value_bytes_max: options.value_bytes_max,
                bytes_max: options.frame_bytes_max() - FRAME_HEADER_BYTES,
            },
            clock: Arc::clone(&options.clock),
        }
    }

    /// The most bytes of records one operation may carry.
    pub(crate) fn ops_bytes_max(&self) -> usize {
        self.frame_bytes_max - FRAME_HEADER_BYTES
    }

    /// What every call that writes or waits for the writer checks first: `Err(Reentrant)` on a
    /// thread running this writer's transactions (it would wait for its own group),
    /// `Err(Poisoned)` if the store is poisoned.
    pub(crate) fn refuse_writes(&self) -> Result<()> {
        self.refuse_if_reentrant()?;
        self.refuse_if_poisoned()
    }

    fn refuse_if_poisoned(&self) -> Result<()> {
        match self.latch.cause() {
            Some(cause) => Err(Error::Poisoned { cause }),
            None => Ok(()),
        }
    }

    /// `Err(Reentrant)` on a thread running this writer's transactions: one thread-local read
    /// on a thread that runs none.
    #[inline]
    pub(crate) fn refuse_if_reentrant(&self) -> Result<()> {
        if Evaluating::includes(self) {
            return Err(Error::Reentrant);
        }
        Ok(())
    }

    /// This writer's identity for [`EVALUATING`]: its address, fixed while the store is open.
    fn identity(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Queues `op` and returns once its group is durable (per the sync mode) and published, or
    /// with the error that prevented it. The caller's thread may lead groups meanwhile.
    pub(crate) fn commit(&self, sets: &Mutex<SegmentSet>, index: &Index, op: Op) -> Completed {
        let mut q = self.queue.lock();
        let ticket = self.enqueue(&mut q, op, None)?;
        loop {
            // Most outcomes are a plain `Written` that the watermark alone reports; look in the
            // map only when something is there.
            if !q.results.is_empty() {
                if let Some(completed) = q.results.remove(&ticket) {
                    return completed;
                }
            }
            if q.done_through >= ticket {
                return Ok(Done::Written);
            }
            if !q.leader {
                q = self.lead_one_group(q, sets, index);
                continue;
            }
            self.wake.wait(&mut q);
        }
    }

    /// Queues `op` for a future: its outcome arrives in the returned slot, once the async driver
    /// (or any blocked writer) has led its group. Never blocks for a group.
    ///
    /// With `wake_driver` false the driver is left asleep: the caller has promised to call
    /// [`Writer::lead_queued`] soon, on a thread of its choosing, so the group costs no wake-up
    /// of another thread (see DESIGN.md, "The async write path"). The operation is never
    /// stranded: whoever leads next takes it, and a leader that ends with operations queued
    /// wakes the driver.
    pub(crate) fn submit(&self, op: Op, wake_driver: bool) -> Result<Arc<Slot>> {
        let slot = Arc::new(Slot::default());
        let mut q = self.queue.lock();
        self.enqueue(&mut q, op, Some(Arc::clone(&slot)))?;
        if wake_driver && !q.leader {
            self.drive.notify_one();
        }
        Ok(slot)
    }

    /// Leads groups on the calling thread, blocking for their syncs, until every operation
    /// queued before the call is done, while nobody else leads; returns how many groups it led.
    /// If another thread leads, it returns at once: that leader takes what is queued, or wakes
    /// the driver for it.
    ///
    /// Bounded by the tickets queued at the call: a caller that kept leading while other
    /// threads kept queuing would hold its thread for as long as they do, and with it whatever
    /// waits to run there (an event loop's other tasks). Operations queued during its syncs are
    /// left to their own caller's lead, or to the driver, which every leader wakes when it ends
    /// with operations queued.
    pub(crate) fn lead_queued(&self, sets: &Mutex<SegmentSet>, index: &Index) -> Result<usize> {
        self.refuse_if_reentrant()?;
        let mut q = self.queue.lock();
        let through = q.next_ticket - 1;
        let mut led = 0;
        while !q.leader && q.done_through < through && !q.pending.is_empty() {
            q = self.lead_one_group(q, sets, index);
            led += 1;
        }
        Ok(led)
    }

    /// The async driver's loop: leads whenever operations are queued and nobody leads them, until
    /// [`Writer::stop_driver`] and an empty queue. Runs on its own thread.
    pub(crate) fn drive(&self, sets: &Mutex<SegmentSet>, index: &Index) {
        let mut q = self.queue.lock();
        loop {
            if !q.leader && !q.pending.is_empty() {
                q = self.lead_one_group(q, sets, index);
            } else if q.closing && q.pending.is_empty() {
                return;
            } else {
                self.drive.wait(&mut q);
            }
        }
    }

    /// Makes the async driver leave once every queued operation is done.
    pub(crate) fn stop_driver(&self) {
        self.queue.lock().closing = true;
        self.drive.notify_all();
    }

    fn enqueue(&self, q: &mut Queue, op: Op, waiter: Option<Arc<Slot>>) -> Result<u64> {
        if let Op::Write(ops) = &op {
            assert!(ops.record_count() > 0 && ops.byte_len() <= self.ops_bytes_max(), "caller checked the batch size");
        }
        self.refuse_writes()?;
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push_back(Pending::new(ticket, op, waiter));
        Ok(ticket)
    }

    /// Becomes leader (the caller saw `!q.leader`), leads one group and hands out its outcomes.
    fn lead_one_group<'w>(
        &'w self,
        mut q: MutexGuard<'w, Queue>,
        sets: &Mutex<SegmentSet>,
        index: &Index,
    ) -> MutexGuard<'w, Queue> {
        if let Some(cause) = self.latch.cause() {
            // Poisoned while operations waited (by a group's failure or in the background):
            // nobody leads again, and the whole queue fails.
            q.fail_all(&cause);
            self.wake.notify_all();
            return q;
        }
        q.leader = true;
        let mut group = self.take_group(&mut q);
        drop(q);
        let mut deferred = Vec::new();
        let outcome = self.lead_catching_panics(sets, index, &mut group, &mut deferred);
        let mut q = self.queue.lock();
        self.finish_group(&mut q, group, deferred, outcome);
        self.wake.notify_all();
        if !q.pending.is_empty() {
            self.drive.notify_one();
        }
        q
    }

    /// Leads a group; a panic inside (a bug) poisons the store and fails the group instead of
    /// unwinding past `finish_group`, which would leave `leader` set and every writer waiting.
    fn lead_catching_panics(
        &self,
        sets: &Mutex<SegmentSet>,
        index: &Index,
        group: &mut Vec<Pending>,
        deferred: &mut Vec<Pending>,
    ) -> Result<()> {
        catch_unwind(AssertUnwindSafe(|| self.lead(sets, index, group, deferred))).unwrap_or_else(|panic| {
            let cause = format!("the group-commit leader panicked: {}", panic_message(&*panic));
            self.latch.trip(cause.clone());
            Err(Error::Poisoned { cause })
        })
    }

    /// Takes queued operations in ticket order, as many as are known to fit in one frame (a
    /// transaction's size is known once it has run: see [`Writer::evaluate`]).
    fn take_group(&self, q: &mut Queue) -> Vec<Pending> {
        let mut group = Vec::new();
        let mut bytes = 0;
        while let Some(next) = q.pending.front() {
            if !group.is_empty() && bytes + next.known_bytes() > self.ops_bytes_max() {
                break;
            }
            bytes += next.known_bytes();
            group.push(q.pending.pop_front().expect("front exists"));
        }
        group
    }

    /// Hands every operation of the group its outcome. Operations cut from the group go back to
    /// the head of the queue, unless the group failed: an evaluated transaction among them
    /// assumed the group's writes, so it cannot be written after them.
    fn finish_group(&self, q: &mut Queue, group: Vec<Pending>, deferred: Vec<Pending>, outcome: Result<()>) {
        q.leader = false;
        if outcome.is_err() {
            for p in group.into_iter().chain(deferred) {
                q.deliver(p, &outcome);
            }
        } else {
            for p in group {
                q.deliver(p, &outcome);
            }
            for p in deferred.into_iter().rev() {
                q.pending.push_front(p);
            }
        }
        if let Some(cause) = self.latch.cause() {
            q.fail_all(&cause);
        }
    }

    /// Runs the group's transactions in log order, each seeing the writes of every operation
    /// before it, and cuts the group where its records would no longer fit in one frame (the
    /// rest, the cut transaction with its result, are returned to be led next: the state it saw
    /// is exactly what the next group starts from).
    fn evaluate(&self, index: &Index, group: &mut Vec<Pending>) -> Vec<Pending> {
        if group.iter().all(|p| p.eval.is_none()) {
            return Vec::new();
        }
        let mut overlay = Overlay::default();
        let now_ms = self.clock.now_ms();
        let mut bytes = 0;
        let _evaluating = Evaluating::enter(self);
        for i in 0..group.len() {
            let p = &mut group[i];
            match p.eval.take() {
                Some(eval) => {
                    let mut txn = Txn::new(index, &overlay, now_ms, self.limits);
                    match catch_unwind(AssertUnwindSafe(|| eval(&mut txn))) {
                        Ok(outcome) => {
                            let writes = txn.finish();
                            p.ops = overlay.encode(writes);
                            p.done = Some(Done::Evaluated(outcome));
                        }
                        Err(panic) => p.done = Some(Done::Panicked(panic)),
                    }
                }
                None => overlay.add_records(&p.ops),
            }
            if i > 0 && bytes + p.ops.byte_len() > self.ops_bytes_max() {
                return group.split_off(i);
            }
            bytes += p.ops.byte_len();
        }
        Vec::new()
    }

    /// The leader's work: run transactions, then one frame, one write, one sync, then publish.
    fn lead(
        &self,
        sets: &Mutex<SegmentSet>,
        index: &Index,
        group: &mut Vec<Pending>,
        deferred: &mut Vec<Pending>,
    ) -> Result<()> {
        *deferred = self.evaluate(index, group);
        let records: u64 = group.iter().map(|p| u64::from(p.ops.record_count())).sum();
        if records == 0 {
            // Only transactions that wrote nothing: what they read is published, so durable.
            return Ok(());
        }
        let mut log = self.log.lock();
        let frame = self.append(&mut log, sets, group, records)?;
        log.tail = frame.offset + frame.len;
        let segment = Arc::clone(&log.segment);
        segment.set_data_end(log.tail);
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(frame.len, Ordering::Relaxed);
        publish(index, &segment, frame.offset, group, frame.first_seq, records);
        Ok(())
    }

    /// Writes the group's `records` as one frame at the log's tail, after a roll-over if the
    /// segment cannot hold it, and in `SyncMode::Always` syncs it. The caller moves the tail.
    fn append(
        &self,
        log: &mut ActiveLog,
        sets: &Mutex<SegmentSet>,
        group: &[Pending],
        records: u64,
    ) -> Result<Appended> {
        let body_len: usize = group.iter().map(|p| p.ops.byte_len()).sum();
        let frame_len = (FRAME_HEADER_BYTES + body_len) as u64;
        if log.tail + frame_len > self.segment_bytes {
            self.refuse_if_no_segment_left(sets)?;
            self.roll(log, sets)?;
        }
        let first_seq = log.next_seq;
        let frame = build_frame(log, group, body_len);
        let offset = log.tail;
        self.ensure_space(log, offset + frame_len)?;
        self.ensure_mapped(log, offset + frame_len)?;
        let segment = &log.segment;
        if let Err(e) = segment.file.write_at(&frame, offset) {
            log.unclean_tail = true;
            return Err(Error::io("append to", segment.path(), e));
        }
        debug_assert!(
            frame_decodes_as_built(&frame, segment.salt, group, first_seq),
            "the frame decodes to its records"
        );
        log.dirty = true;
        log.unsynced_records += records;
        if self.sync_every_nanos.load(Ordering::Relaxed) == 0 {
            self.sync_log(log).inspect_err(|_| log.unclean_tail = true)?;
        }
        Ok(Appended { offset, len: frame_len, first_seq })
    }

    /// Makes sure the file is at least `end` long, growing it in zero-filled, synced steps so
    /// that the per-write sync need not also persist a new file length. The steps double from
    /// `PREALLOCATE_FIRST_BYTES` up to `preallocate_bytes` (`grown_len`), so a small store
    /// stays small.
    fn ensure_space(&self, log: &mut ActiveLog, end: u64) -> Result<()> {
        if end <= log.file_len {
            return Ok(());
        }
        if self.preallocate_bytes == 0 {
            log.file_len = end;
            return Ok(());
        }
        let target = grown_len(log.file_len, end, self.preallocate_bytes, self.segment_bytes);
        let segment = Arc::clone(&log.segment);
        let zeros = vec![0u8; (target - log.file_len) as usize];
        if let Err(e) = segment.file.write_at(&zeros, log.file_len) {
            // The length is now unknown; a later attempt starts from what the file says. A full
            // disk here leaves nothing acknowledged at risk, so it does not poison.
            log.file_len = segment.file.len().unwrap_or(log.file_len).max(log.tail);
            return Err(Error::io("grow", segment.path(), e));
        }
        // A failed sync poisons, whatever its cause (see `sync_log`).
        sync_log_file(&segment)?;
        log.file_len = target;
        Ok(())
    }

    /// Makes sure the active segment's mapping covers `end` before anything up to it is written
    /// and published (`Segment::map_through`). Mapping may extend the file (Windows cannot map
    /// past its end), so the file's length is taken again. A failure leaves the tail where it
    /// was, like a failed write.
    fn ensure_mapped(&self, log: &mut ActiveLog, end: u64) -> Result<()> {
        let segment = &log.segment;
        // Only a new mapping can have changed the length: no `stat` per group otherwise.
        if segment.map_through(end, self.segment_bytes).map_err(|e| Error::io("map", segment.path(), e))? {
            let file_len = segment.file.len().map_err(|e| Error::io("stat", segment.path(), e))?;
            log.file_len = log.file_len.max(file_len);
        }
        Ok(())
    }

    /// `Error::TooManySegments` if a roll-over would leave more live segments than the limit
    /// (`format::LIVE_SEGMENTS_MAX`: an index entry names its segment in 20 bits). Checked
    /// before anything is written, so the write fails whole and nothing is poisoned; a
    /// compaction (whose own roll-over is not refused: it frees more than it takes) makes room.
    fn refuse_if_no_segment_left(&self, sets: &Mutex<SegmentSet>) -> Result<()> {
        let segments = sets.lock().sealed.len() + 1;
        if segments >= self.live_segments_max {
            return Err(Error::TooManySegments { segments, max: self.live_segments_max });
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one. The new segment and its directory entry
    /// are durable before the manifest names it; the manifest rename is the commit point.
    fn roll(&self, log: &mut ActiveLog, sets: &Mutex<SegmentSet>) -> Result<()> {
        if log.dirty {
            self.sync_log(log)?;
        }
        if log.unclean_tail {
            // The segment is mapped, so on Windows this zero-fills from the tail instead of
            // cutting (`VfsFile::set_len`): either way only zeros follow the last frame.
            let old = Arc::clone(&log.segment);
            old.file.set_len(log.tail).map_err(|e| Error::io("truncate", old.path(), e))?;
            sync_log_file(&old)?;
            log.file_len = log.tail;
            log.unclean_tail = false;
        }
        let id = sets.lock().allocate_id();
        let header = SegmentHeader { kind: SegmentKind::Log, id, first_group: log.group, salt: fresh_salt() };
        // Only a segment whose first group is above every compacted frame's group takes a pooled
        // file, so that no frame the old file holds, log or compacted, has a group the new
        // segment admits (DESIGN.md, "Recycled segment files").
        let reuse = header.first_group > COMPACTED_FRAME_GROUP;
        let (path, file, reused) = self.pool.new_segment_file(&header, reuse)?;
        self.dir.sync_dir()?;
        let data_end = SEGMENT_HEADER_BYTES as u64;
        // The mapping follows the file as it grows (`ensure_mapped`). Mapping may have extended
        // the file (Windows cannot map past its end, see `io/platform.rs`): `ensure_space`
        // grows it from its real length.
        let len = map_len(data_end, self.segment_bytes);
        let map = file.map(len).map_err(|e| Error::io("map", &path, e))?;
        let file_len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let segment = Arc::new(Segment::new(id, SegmentKind::Log, header.salt, path, file, (map, len), data_end));
        {
            // Persist the new manifest before changing the set in memory, so a failure leaves
            // memory agreeing with the manifest that is still in force.
            // The manifest is built from the set as it is now, not as it was when `id` was
            // allocated: a compaction may have committed outputs with higher ids meanwhile.
            let mut set = sets.lock();
            let manifest = set.manifest_with_new_active(id);
            self.dir.write_file_atomic(MANIFEST_FILE, &encode_manifest(&manifest))?;
            let old = std::mem::replace(&mut set.active, Arc::clone(&segment));
            self.sealed.lock().push(old.id);
            self.sealed_flag.store(true, Ordering::Release);
            set.sealed.insert(old.id, old);
        }
        log.segment = segment;
        log.tail = data_end;
        log.file_len = file_len;
        // A reused file's old contents follow the header: cut at the next roll-over.
        log.unclean_tail = reused;
        Ok(())
    }

    /// Cuts whatever follows the tail of a reused active segment (its old contents), so that the
    /// next open finds a clean end of data instead of a torn tail. Called when the store closes;
    /// a crash before it leaves the old contents for recovery's torn-tail rule, which never takes
    /// them (DESIGN.md, "Recycled segment files").
    pub(crate) fn trim_tail(&self) -> Result<()> {
        let mut log = self.log.lock();
        self.refuse_if_poisoned()?;
        if !log.unclean_tail {
            return Ok(());
        }
        if log.dirty {
            self.sync_log(&mut log)?;
        }
        let segment = Arc::clone(&log.segment);
        segment.file.set_len(log.tail).map_err(|e| Error::io("truncate", segment.path(), e))?;
        sync_log_file(&segment)?;
        log.file_len = segment.file.len().map_err(|e| Error::io("stat", segment.path(), e))?;
        log.unclean_tail = false;
        Ok(())
    }

    /// Whether a segment was sealed since the last [`Writer::take_sealed`].
    pub(crate) fn has_sealed(&self) -> bool {
        self.sealed_flag.load(Ordering::Acquire)
    }

    /// The segments sealed since the last call.
    pub(crate) fn take_sealed(&self) -> Vec<u64> {
        self.sealed_flag.store(false, Ordering::Release);
        std::mem::take(&mut *self.sealed.lock())
    }

    /// Seals the active segment if it holds any frame, so that compaction can take all data.
    pub(crate) fn roll_if_nonempty(&self, sets: &Mutex<SegmentSet>) -> Result<()> {
        self.refuse_if_reentrant()?;
        let mut log = self.log.lock();
        self.refuse_if_poisoned()?;
        if log.tail > SEGMENT_HEADER_BYTES as u64 {
            self.roll(&mut log, sets)?;
        }
        Ok(())
    }

    /// Syncs whatever was written since the last sync (write-back mode, or `Store::sync`). A
    /// poisoned store refuses, in every mode: after a failed sync, a retry that succeeds proves
    /// nothing about the data the failed one should have covered.
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.refuse_if_reentrant()?;
        let mut log = self.log.lock();
        self.refuse_if_poisoned()?;
        if !log.dirty {
            return Ok(());
        }
        self.sync_log(&mut log)
    }

    /// The sync mode in force.
    pub(crate) fn sync_mode(&self) -> SyncMode {
        match self.sync_every_nanos.load(Ordering::Relaxed) {
            0 => SyncMode::Always,
            nanos => SyncMode::Every(std::time::Duration::from_nanos(nanos)),
        }
    }

    /// Switches the sync mode. Under `log`'s lock, so a group appended after this returns
    /// follows the new mode; switching to `Always` also syncs what write-back left pending, so
    /// every write acknowledged so far is durable when this returns. A failed sync poisons, as
    /// any other (the mode is switched all the same).
    pub(crate) fn set_sync_mode(&self, mode: SyncMode) -> Result<()> {
        self.refuse_if_reentrant()?;
        let mut log = self.log.lock();
        self.refuse_if_poisoned()?;
        self.sync_every_nanos.store(sync_every_nanos(mode), Ordering::Relaxed);
        if mode == SyncMode::Always && log.dirty {
            self.sync_log(&mut log)?;
        }
        Ok(())
    }

    /// Syncs the active segment and moves to the next group. A failure trips the latch.
    fn sync_log(&self, log: &mut ActiveLog) -> Result<()> {
        sync_log_file(&log.segment)?;
        log.group += 1;
        log.dirty = false;
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.stats.synced_records.fetch_add(std::mem::take(&mut log.unsynced_records), Ordering::Relaxed);
        Ok(())
    }
}

/// `Writer::sync_every_nanos`' encoding of `mode` (an interval is at least a nanosecond:
/// `Options` refuses a zero one).
fn sync_every_nanos(mode: SyncMode) -> u64 {
    match mode {
        SyncMode::Always => 0,
        SyncMode::Every(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
    }
}

/// The message of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Syncs a log segment. The latch decides that a failure poisons (`io/checked.rs`) and makes
/// sure it is never reported as a harmless `DiskFull`.
fn sync_log_file(segment: &Segment) -> Result<()> {
    segment.file.sync_data().map_err(|e| Error::io("sync", segment.path(), e))
}

/// Builds the group's frame: header, then every operation's records with sequence numbers stamped.
fn build_frame(log: &mut ActiveLog, group: &[Pending], body_len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body_len);
    frame.resize(FRAME_HEADER_BYTES, 0);
    for p in group {
        frame.extend_from_slice(p.ops.bytes());
    }
    let mut records = 0u32;
    for (at, _, _) in frame_records(group) {
        stamp_seq(&mut frame, at, log.next_seq);
        log.next_seq += 1;
        records += 1;
    }
    finish_frame(&mut frame, 0, log.group, records, log.segment.salt);
    frame
}

/// Every record of the group's frame in frame order, with its offset in the frame and the
/// operation it came from, from what the encoders recorded (nothing is decoded).
fn frame_records(group: &[Pending]) -> impl Iterator<Item = (usize, &Encoded, &Placed)> {
    let starts = group.iter().scan(FRAME_HEADER_BYTES, |next, p| {
        let start = *next;
        *next += p.ops.byte_len();
        Some((start, &p.ops))
    });
    starts.flat_map(|(start, ops)| ops.records().map(move |r| (start + r.at(), ops, r)))
}

/// Whether `frame` decodes, under `salt`, to exactly the records [`frame_records`] says it holds,
/// numbered from `first_seq` on: the full decode the write path itself skips, for debug builds.
fn frame_decodes_as_built(frame: &[u8], salt: FrameSalt, group: &[Pending], first_seq: u64) -> bool {
    let Ok(decoded) = decode_frame(frame, salt) else { return false };
    let decoded = decoded.records().map(|r| r.map(|r| (r.frame_offset, r.seq, r.kind, r.key, r.value, r.expires_ms)));
    let built = frame_records(group)
        .zip(first_seq..)
        .map(|((at, ops, r), seq)| Ok((at, seq, r.kind, ops.key(r), ops.value(r), r.expires_ms())));
    decoded.eq(built)
}

/// Publishes a durable frame's records to the index, in log order, all at once to readers.
/// `first_seq` is the sequence number of the frame's first record, `records` its record count.
fn publish(index: &Index, segment: &Arc<Segment>, frame_offset: u64, group: &[Pending], first_seq: u64, records: u64) {
    // build_frame stamped sequence numbers in this same order, from `first_seq` on.
    let published = frame_records(group).zip(first_seq..).map(|((at, ops, record), seq)| {
        let offset = u32::try_from(frame_offset + at as u64).expect("segment offsets fit u32");
        Published {
            key: ops.key(record),
            kind: record.kind,
            offset,
            len: record.header().record_len() as u64,
            seq,
            expires_ms: record.expires_ms(),
        }
    });
    if records == 1 {
        // A lone put allocates nothing here.
        index.publish(segment, &[published.into_iter().next().expect("one record")]);
    } else {
        index.publish(segment, &published.collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const HEADER: u64 = SEGMENT_HEADER_BYTES as u64;

    #[test]
    fn preallocation_starts_small_and_doubles_up_to_the_step() {
        let mut len = HEADER;
        let mut lens = Vec::new();
        while len < 64 * MIB {
            len = grown_len(len, len + 1, 4 * MIB, 64 * MIB);
            lens.push(len);
        }
        assert_eq!(lens[..9], [16 * KIB, 32 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, MIB, 2 * MIB, 4 * MIB]);
        assert_eq!(lens[9], 8 * MIB, "past the step, fixed steps");
        assert_eq!(lens.len(), 24, "the growth syncs of a default segment, as DESIGN.md says");
    }

    #[test]
    fn a_large_frame_or_a_small_step_is_honoured() {
        assert_eq!(grown_len(HEADER, 100 * KIB, 4 * MIB, 64 * MIB), 112 * KIB, "whole first steps");
        assert_eq!(grown_len(HEADER, 100, 4 * KIB, 16 * KIB), 4 * KIB, "a step below the first step");
        assert_eq!(grown_len(20_000, 20_100, 4 * MIB, 64 * MIB), 32 * KIB, "a cut file regains alignment");
        assert_eq!(grown_len(60 * MIB, 63 * MIB, 4 * MIB, 62 * MIB), 63 * MIB, "never short of `end`");
    }
}
