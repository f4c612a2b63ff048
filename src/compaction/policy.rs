//! Which sealed segments to compact, decided from each segment's own accounting. Pure logic: no
//! I/O, no locks, no clock (the caller passes the time), so every decision is unit-tested here.
//!
//! The shape is Bitcask's: a run is *triggered* by one segment that is worth it on its own (its
//! dead ratio or dead bytes reach the trigger), and then *selects* every segment past the lower
//! selection thresholds, every small segment and every segment holding expired records, in id
//! order, until the run's input budget (`run_input_bytes_max`: the configured cap, but no more
//! than an eighth of the store's live bytes or one segment, whichever is more). So a store with a
//! large cold part and a small hot part rewrites the hot segments, not the whole store, and one
//! run never needs more extra disk than the budget plus one segment, at any store size.

use crate::format::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};

/// Records are copied in frames of about this size.
pub(crate) const COMPACTION_FRAME_BYTES: usize = 1 << 20;
/// A sealed segment smaller than this fraction of `segment_bytes` is merged into any run that
/// has room for it (compaction's last output of a run is usually partly filled).
pub(crate) const SMALL_SEGMENT_DIVISOR: u64 = 4;
/// Small segments join a run only once there are at least this many: merging rewrites them, so
/// a run's part-full last output is not copied again by every next run.
pub(crate) const SMALL_SEGMENTS_MERGE_MIN: usize = 4;
/// A segment is *young* until this many times its own record count has been written to the log
/// after its last record. A young segment's dead ratio does not count yet: in a skewed workload a
/// just-sealed segment is mostly hot records that are about to die anyway, and compacting it at
/// half dead would copy them only to drop them again (measured: write amplification 1.73 instead
/// of about 1.2 on the skewed steady-state benchmark).
pub(crate) const YOUNG_AGE_FACTOR: u64 = 2;
/// ... unless it is already this dead: then what is left to copy is at most a small fraction of
/// it, however many of those records die later, and waiting would keep the dead bytes on disk
/// (measured: on the skewed steady-state benchmark at 0.3 GB live the disk peaked at 2.14x live
/// with three just-sealed 64 MiB segments 84-91% dead waiting out their age).
pub(crate) const YOUNG_DEAD_RATIO_MIN: f64 = 0.85;
/// Selection thresholds are the trigger thresholds scaled by this: a run that has started
/// anyway also takes segments that are nearly worth it, so they need not start a run of their own.
pub(crate) const SELECT_FRACTION: f64 = 0.8;

/// One run reads at most the store's live bytes divided by this (or one segment, if that is
/// more), within `compaction_input_bytes_max`: a run's outputs coexist with its inputs until it
/// commits, so on a store of a few hundred MB an absolute cap alone would let one run take
/// nearly the store's size again in extra disk.
pub(crate) const RUN_LIVE_DIVISOR: u64 = 8;

/// The input budget of one run, in bytes: `cap` (`compaction_input_bytes_max`), but at most
/// `store_live_bytes / RUN_LIVE_DIVISOR`, or `segment_bytes` if that is more (so that small
/// segments can still be merged into one output, and a small store is not compacted a sliver
/// at a time). A run's outputs hold at most its input's records (DESIGN.md, "Bounded disk"), and
/// a run's first segment is taken whatever the budget, so the extra disk of one run is at most
/// `min(cap, store_live_bytes / RUN_LIVE_DIVISOR)` plus one segment (and the copy's headers).
pub(crate) fn run_input_bytes_max(cap: u64, store_live_bytes: u64, segment_bytes: u64) -> u64 {
    cap.min((store_live_bytes / RUN_LIVE_DIVISOR).max(segment_bytes))
}

/// What the policy needs to know of one sealed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentUsage {
    pub(crate) id: u64,
    /// Bytes up to the end of the segment's data (headers included).
    pub(crate) data_bytes: u64,
    /// Bytes compaction would copy (see `Segment::live_bytes`).
    pub(crate) live_bytes: u64,
    /// Records compaction would copy.
    pub(crate) live_records: u64,
    /// Records in it.
    pub(crate) records: u64,
    /// Its highest sequence number.
    pub(crate) seq_max: u64,
    /// Tombstones in the segment (which may have to be kept, so the segment is read).
    pub(crate) tombstones: u64,
    /// The earliest expiry of any put in it (Unix ms; `u64::MAX`: none).
    pub(crate) expiry_min_ms: u64,
}

impl SegmentUsage {
    fn dead_bytes(&self) -> u64 {
        self.data_bytes.saturating_sub(self.live_bytes)
    }

    fn dead_ratio(&self) -> f64 {
        if self.data_bytes == 0 {
            0.0
        } else {
            self.dead_bytes() as f64 / self.data_bytes as f64
        }
    }

    /// Fewer records than `YOUNG_AGE_FACTOR` times its own were written after it (`seq_now`: the
    /// store's newest sequence number; 0 ignores age).
    fn young(&self, seq_now: u64) -> bool {
        seq_now != 0 && seq_now.saturating_sub(self.seq_max) < YOUNG_AGE_FACTOR.saturating_mul(self.records)
    }

    fn holds_expired(&self, now_ms: u64) -> bool {
        self.expiry_min_ms <= now_ms
    }

    /// Nothing in it needs copying or reading: no live record, no tombstone, and no put that
    /// may be its key's newest record although the index lost it (an expired one).
    fn droppable_whole(&self, now_ms: u64) -> bool {
        self.live_records == 0 && self.tombstones == 0 && !self.holds_expired(now_ms)
    }
}

/// The thresholds, from `Options` (see there for what each means and its default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) dead_ratio: f64,
    pub(crate) segment_dead_bytes: u64,
    /// A run starts only if its victims hold at least this many dead bytes in all.
    pub(crate) run_dead_bytes_min: u64,
    pub(crate) small_bytes: u64,
    /// The run's input budget (`run_input_bytes_max`).
    pub(crate) input_bytes_max: u64,
    pub(crate) now_ms: u64,
    /// The store's newest sequence number, for the age rule (0: no age rule).
    pub(crate) seq_now: u64,
    /// A manual compaction: expired records trigger a run too, small segments are merged however
    /// few, and segments holding tombstones are taken (those their run's rule lets go are
    /// dropped), whatever the ratios.
    pub(crate) thorough: bool,
}

impl Thresholds {
    /// A manual compaction (`Store::compact`): every sealed segment with a dead byte beyond its
    /// headers, or small, or holding expired records, whatever the ratios; still in capped runs.
    pub(crate) fn everything(input_bytes_max: u64, small_bytes: u64, now_ms: u64) -> Thresholds {
        Thresholds {
            dead_ratio: 0.0,
            segment_dead_bytes: 0,
            run_dead_bytes_min: 0,
            small_bytes,
            input_bytes_max,
            now_ms,
            seq_now: 0,
            thorough: true,
        }
    }
}

/// Why a segment is in a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Why {
    /// Its dead ratio reached the threshold in force (trigger or selection).
    DeadRatio(f64),
    /// Its dead bytes reached the threshold in force.
    DeadBytes(u64),
    /// It is smaller than the small-segment threshold.
    Small(u64),
    /// It holds a put whose expiry has passed.
    Expired,
    /// It holds tombstones (a manual compaction looks whether they may go now).
    Tombstones(u64),
}

/// One segment of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Victim {
    pub(crate) id: u64,
    pub(crate) why: Why,
    /// All its records are dead: it is removed without being read or copied.
    pub(crate) drop_whole: bool,
}

/// The outcome of a policy check, with its reason (for the report).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Leave the segments alone.
    Skip(String),
    /// Compact these segments (in id order).
    Compact { victims: Vec<Victim>, reason: String },
}

/// Decides the next run over `sealed` (any order).
pub(crate) fn decide(sealed: &[SegmentUsage], t: &Thresholds) -> Decision {
    let mut sealed = sealed.to_vec();
    sealed.sort_unstable_by_key(|s| s.id);
    let by_garbage = |s: &SegmentUsage, ratio: f64, bytes| {
        if s.young(t.seq_now) {
            why(s, ratio.max(YOUNG_DEAD_RATIO_MIN), 0)
        } else {
            why(s, ratio, bytes)
        }
    };
    let trigger = |s: &SegmentUsage| {
        by_garbage(s, t.dead_ratio, t.segment_dead_bytes)
            .or_else(|| (s.droppable_whole(t.now_ms) && s.data_bytes > 0).then_some(Why::DeadRatio(1.0)))
            .or_else(|| (t.thorough && s.holds_expired(t.now_ms)).then_some(Why::Expired))
            .or_else(|| (t.thorough && s.tombstones > 0).then_some(Why::Tombstones(s.tombstones)))
    };
    let Some(first) = sealed.iter().find_map(|s| trigger(s).map(|w| (s.id, w))) else {
        return Decision::Skip(format!(
            "no sealed segment has a dead ratio of {:.2} or {} dead bytes",
            t.dead_ratio, t.segment_dead_bytes
        ));
    };
    let select_ratio = t.dead_ratio * SELECT_FRACTION;
    let select_bytes = (t.segment_dead_bytes as f64 * SELECT_FRACTION) as u64;
    let mut victims = Vec::new();
    let (mut input, mut dead) = (0u64, 0u64);
    let small = |s: &SegmentUsage| s.data_bytes < t.small_bytes;
    let merge_small = t.thorough || sealed.iter().filter(|s| small(s)).count() >= SMALL_SEGMENTS_MERGE_MIN;
    // The trigger is taken first, then the others in id order, as the budget allows. In id order
    // alone, segments before the trigger that are not worth a run on their own (small ones,
    // barely past the selection threshold) could fill a budget of one segment every time, and
    // the run would fall below `run_dead_bytes_min` and be skipped for ever (measured: the skewed
    // steady-state benchmark at 0.3 GB live stalled at 3.1x disk over live).
    let trigger_first = sealed.iter().filter(|s| s.id == first.0).chain(sealed.iter().filter(|s| s.id != first.0));
    for s in trigger_first {
        let Some(why) = by_garbage(s, select_ratio, select_bytes).or_else(|| {
            if s.holds_expired(t.now_ms) {
                Some(Why::Expired)
            } else if s.droppable_whole(t.now_ms) && s.data_bytes > 0 {
                Some(Why::DeadRatio(1.0))
            } else if t.thorough && s.tombstones > 0 {
                Some(Why::Tombstones(s.tombstones))
            } else {
                (merge_small && small(s)).then_some(Why::Small(s.data_bytes))
            }
        }) else {
            continue;
        };
        let drop_whole = s.droppable_whole(t.now_ms);
        // A segment dropped whole costs no copy and no disk: the cap counts what is read.
        let cost = if drop_whole { 0 } else { s.data_bytes };
        if !victims.is_empty() && input + cost > t.input_bytes_max {
            continue;
        }
        input += cost;
        dead += s.dead_bytes();
        victims.push(Victim { id: s.id, why, drop_whole });
    }
    victims.sort_unstable_by_key(|v| v.id);
    if dead < t.run_dead_bytes_min {
        return Decision::Skip(format!(
            "segment {} is worth it ({}), but the run would reclaim {dead} bytes, below {}",
            first.0,
            describe(first.1),
            t.run_dead_bytes_min
        ));
    }
    let reason = format!(
        "segment {} {}; {} segments selected ({input} bytes to read, {dead} dead)",
        first.0,
        describe(first.1),
        victims.len()
    );
    Decision::Compact { victims, reason }
}

/// Whether `s` passes a ratio or a dead-bytes threshold (0 bytes: no dead-bytes threshold). Only
/// what a rewrite would reclaim counts: a segment whose dead bytes are no more than the headers
/// its copy would need anyway never passes.
fn why(s: &SegmentUsage, ratio: f64, bytes: u64) -> Option<Why> {
    let reclaimable = s.dead_bytes().saturating_sub(rewrite_overhead(s.data_bytes));
    if reclaimable == 0 {
        return None;
    }
    if s.dead_ratio() >= ratio {
        Some(Why::DeadRatio(s.dead_ratio()))
    } else if bytes > 0 && s.dead_bytes() >= bytes {
        Some(Why::DeadBytes(s.dead_bytes()))
    } else {
        None
    }
}

/// Header bytes a compacted copy of `data_bytes` of records needs: its segment header and one
/// frame header per compaction frame.
fn rewrite_overhead(data_bytes: u64) -> u64 {
    let frames = data_bytes / COMPACTION_FRAME_BYTES as u64 + 1;
    (SEGMENT_HEADER_BYTES + frames as usize * FRAME_HEADER_BYTES) as u64
}

fn describe(why: Why) -> String {
    match why {
        Why::DeadRatio(r) => format!("is {:.0}% dead", r * 100.0),
        Why::DeadBytes(b) => format!("has {b} dead bytes"),
        Why::Small(b) => format!("is small ({b} bytes)"),
        Why::Expired => "holds expired records".into(),
        Why::Tombstones(n) => format!("holds {n} tombstones"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn usage(id: u64, data: u64, live: u64) -> SegmentUsage {
        SegmentUsage {
            id,
            data_bytes: data,
            live_bytes: live,
            live_records: live / 100,
            records: data / 100,
            seq_max: id * 1_000_000,
            tombstones: 0,
            expiry_min_ms: u64::MAX,
        }
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            dead_ratio: 0.5,
            segment_dead_bytes: 512 * MIB,
            run_dead_bytes_min: 0,
            small_bytes: 16 * MIB,
            input_bytes_max: 256 * MIB,
            now_ms: 1_000,
            seq_now: 0,
            thorough: false,
        }
    }

    fn victims(d: Decision) -> Vec<(u64, Why, bool)> {
        match d {
            Decision::Compact { victims, .. } => victims.iter().map(|v| (v.id, v.why, v.drop_whole)).collect(),
            Decision::Skip(reason) => panic!("expected a run, got a skip: {reason}"),
        }
    }

    #[test]
    fn nothing_sealed_or_nothing_worth_it_is_skipped() {
        assert!(matches!(decide(&[], &thresholds()), Decision::Skip(_)));
        let cold = [usage(1, 64 * MIB, 64 * MIB - 1000), usage(2, 64 * MIB, 40 * MIB)];
        assert!(matches!(decide(&cold, &thresholds()), Decision::Skip(_)), "37% dead does not trigger");
    }

    #[test]
    fn one_segment_triggers_and_the_cold_ones_stay() {
        // A large cold store with one hot segment: only the hot one is rewritten.
        let mut sealed: Vec<_> = (1..=20).map(|id| usage(id, 64 * MIB, 63 * MIB)).collect();
        sealed.push(usage(21, 64 * MIB, 10 * MIB));
        assert_eq!(victims(decide(&sealed, &thresholds())), vec![(21, Why::DeadRatio(54.0 / 64.0), false)]);
    }

    #[test]
    fn a_run_selects_below_the_trigger_adds_small_and_expired_segments_in_id_order() {
        let mut expired = usage(5, 64 * MIB, 60 * MIB);
        expired.expiry_min_ms = 999;
        let sealed = [
            usage(4, 64 * MIB, 34 * MIB), // 47% dead: selected (>= 40%), not a trigger
            expired,
            usage(2, 64 * MIB, 20 * MIB), // 69% dead: the trigger
            usage(3, 64 * MIB, 50 * MIB), // 22% dead: left alone
            usage(6, 8 * MIB, 8 * MIB - 1000),
        ];
        let got = victims(decide(&sealed, &thresholds()));
        let ids: Vec<u64> = got.iter().map(|v| v.0).collect();
        assert_eq!(ids, vec![2, 4, 5], "one small segment is not merged on its own");
        assert_eq!(got[2].1, Why::Expired);
        let mut more: Vec<_> = sealed.to_vec();
        more.extend((7..7 + SMALL_SEGMENTS_MERGE_MIN as u64 - 1).map(|id| usage(id, 4 * MIB, 4 * MIB - 1000)));
        let got = victims(decide(&more, &thresholds()));
        assert_eq!(got.iter().map(|v| v.0).collect::<Vec<_>>(), vec![2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(got[3].1, Why::Small(8 * MIB));
    }

    #[test]
    fn the_cap_holds_and_a_fully_dead_segment_costs_nothing() {
        let mut sealed: Vec<_> = (1..=10).map(|id| usage(id, 64 * MIB, 16 * MIB)).collect();
        let mut dead = usage(11, 64 * MIB, 0);
        dead.live_records = 0;
        sealed.push(dead);
        let got = victims(decide(&sealed, &thresholds()));
        // 256 MiB of input: four segments to copy, and the fully dead one on top.
        assert_eq!(got.iter().map(|v| v.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 11]);
        assert!(got[4].2, "the fully dead segment is dropped whole");
        assert!(!got[0].2);
    }

    #[test]
    fn a_young_segment_waits_even_if_it_is_half_dead() {
        // Segment 2 holds 671,088 records and the last was written 1,000,000 records ago: young
        // (its hot records are still dying). Segment 1 is old and just as dead.
        let sealed = [usage(1, 64 * MIB, 16 * MIB), usage(2, 64 * MIB, 16 * MIB)];
        let t = Thresholds { seq_now: 3_000_000, ..thresholds() };
        assert_eq!(victims(decide(&sealed, &t)).iter().map(|v| v.0).collect::<Vec<_>>(), vec![1]);
        let t = Thresholds { seq_now: 2_000_000 + 3 * 671_088, ..thresholds() };
        assert_eq!(victims(decide(&sealed, &t)).len(), 2, "old enough");
        let young_and_dead = [usage(3, 64 * MIB, 0)];
        let t = Thresholds { seq_now: 3_000_001, ..thresholds() };
        assert!(victims(decide(&young_and_dead, &t))[0].2, "a fully dead segment goes whatever its age");
    }

    #[test]
    fn a_young_segment_that_is_nearly_all_dead_goes() {
        // Young as above, but 90% dead: little is left to copy, so it does not wait; at 80% it does.
        let t = Thresholds { seq_now: 3_000_000, ..thresholds() };
        let nearly_dead = [usage(2, 100 * MIB, 10 * MIB)];
        assert_eq!(victims(decide(&nearly_dead, &t)), vec![(2, Why::DeadRatio(0.9), false)]);
        let mostly_dead = [usage(2, 100 * MIB, 20 * MIB)];
        assert!(matches!(decide(&mostly_dead, &t), Decision::Skip(_)), "80% dead and young: waits");
    }

    #[test]
    fn a_run_reads_at_most_an_eighth_of_the_store_or_one_segment_within_the_cap() {
        const GIB: u64 = 1 << 30;
        assert_eq!(run_input_bytes_max(256 * MIB, 300 * MIB, 64 * MIB), 64 * MIB, "one segment");
        assert_eq!(run_input_bytes_max(256 * MIB, GIB, 64 * MIB), 128 * MIB, "an eighth");
        assert_eq!(run_input_bytes_max(256 * MIB, 8 * GIB, 64 * MIB), 256 * MIB, "the cap");
        assert_eq!(run_input_bytes_max(16 * MIB, 0, 64 * MIB), 16 * MIB, "the cap, below a segment");
        // Ten half-dead segments of a 1 GiB store: two per run, not four.
        let sealed: Vec<_> = (1..=10).map(|id| usage(id, 64 * MIB, 32 * MIB)).collect();
        let t = Thresholds { input_bytes_max: run_input_bytes_max(256 * MIB, GIB, 64 * MIB), ..thresholds() };
        assert_eq!(victims(decide(&sealed, &t)).len(), 2);
    }

    /// Found by the skewed steady-state benchmark once runs were bounded to one segment: small
    /// and barely dead segments with lower ids than the trigger filled every run, which then
    /// reclaimed less than `run_dead_bytes_min` and was skipped, so compaction stopped.
    #[test]
    fn regression_the_trigger_is_in_the_run_whatever_segments_come_before_it() {
        let mut sealed: Vec<_> = (1..=4).map(|id| usage(id, 8 * MIB, 7 * MIB)).collect(); // small, 12% dead
        sealed.push(usage(5, 64 * MIB, 36 * MIB)); // 44% dead: selected, not a trigger
        sealed.push(usage(6, 64 * MIB, 16 * MIB)); // 75% dead: the trigger
        let t = Thresholds { input_bytes_max: 64 * MIB, run_dead_bytes_min: 16 * MIB, ..thresholds() };
        assert_eq!(victims(decide(&sealed, &t)), vec![(6, Why::DeadRatio(0.75), false)]);
        let t = Thresholds { input_bytes_max: 96 * MIB, ..t };
        let got = victims(decide(&sealed, &t));
        assert_eq!(got.iter().map(|v| v.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 6], "then the others, in id order");
    }

    #[test]
    fn a_segment_larger_than_the_cap_still_makes_a_run() {
        let sealed = [usage(1, 64 * MIB, 0)];
        let t = Thresholds { input_bytes_max: MIB, ..thresholds() };
        assert_eq!(victims(decide(&sealed, &t)).len(), 1);
    }

    #[test]
    fn dead_bytes_trigger_large_segments_and_the_run_minimum_holds() {
        let sealed = [usage(1, 2048 * MIB, 1400 * MIB)]; // 32% dead, 648 MiB dead
        assert!(matches!(victims(decide(&sealed, &thresholds()))[0].1, Why::DeadBytes(_)));
        let t = Thresholds { run_dead_bytes_min: 1024 * MIB, ..thresholds() };
        assert!(matches!(decide(&sealed, &t), Decision::Skip(_)));
    }

    #[test]
    fn tombstones_or_expired_records_keep_a_dead_segment_from_being_dropped_unread() {
        let mut with_tombstones = usage(1, 64 * MIB, 0);
        with_tombstones.live_records = 0;
        with_tombstones.tombstones = 3;
        let mut with_expired = usage(2, 64 * MIB, 0);
        with_expired.live_records = 0;
        with_expired.expiry_min_ms = 10;
        let got = victims(decide(&[with_tombstones, with_expired], &thresholds()));
        assert_eq!(got.iter().map(|v| v.2).collect::<Vec<_>>(), vec![false, false]);
    }

    #[test]
    fn a_manual_compaction_takes_everything_with_garbage_but_not_fully_live_segments() {
        let sealed = [usage(1, 64 * MIB, 64 * MIB - 1000), usage(2, 64 * MIB, 60 * MIB), usage(3, 64 * MIB, 0)];
        let t = Thresholds::everything(u64::MAX, 16 * MIB, 0);
        let got = victims(decide(&sealed, &t));
        assert_eq!(got.iter().map(|v| v.0).collect::<Vec<_>>(), vec![2, 3]);
    }
}
