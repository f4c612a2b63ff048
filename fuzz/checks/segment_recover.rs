//! `segment_recover`: arbitrary bytes as a segment of a store laid out on `SimFs`, opened by the
//! real recovery code.
//!
//! Input: byte 0 picks the mode, byte 1 how many frames of a valid prefix to write, the rest are
//! the fuzz bytes.
//! * mode bit 0: the fuzz bytes go into the active segment (0) or into an older, sealed one (1).
//! * mode bit 1: the segment is a valid header and prefix followed by the fuzz bytes (0), or the
//!   fuzz bytes alone, header included (1).
//! * mode bit 2: frames in the fuzz bytes get their checksums fixed up (a chain of frames from
//!   the start of the fuzz bytes, and again from every later frame magic), so that the fuzzer
//!   builds valid frames: continuations, stale groups and later groups.
//!
//! What is guaranteed, with a valid prefix (DESIGN.md, "Recovery"):
//! * The log's frames are walked from the header; frames that continue the group sequence (same
//!   group or the next) are data, whatever they come from; the walk stops at the first other
//!   bytes that are not all zero.
//! * Active segment: if some valid frame of a group at least two past the last accepted one
//!   starts at or after that stop, the damage is in acknowledged data and open fails with
//!   `Corruption`; otherwise the rest is a torn tail, open succeeds and every accepted record
//!   (the whole valid prefix included) is recovered. In particular, garbage that holds no valid
//!   frame never costs a record of the prefix.
//! * Sealed segment: any stop before a clean end is `Corruption`; otherwise open succeeds.
//!
//! Without a prefix: open succeeds or fails with `Corruption`. In every mode, a store that opens
//! accepts a write and reopens holding what it held plus that write.

use ferrocask::format::SEGMENT_HEADER_BYTES;
use ferrocask::testing::SimFs;

use super::common::*;

pub const MODE_SEALED: u8 = 1;
pub const MODE_NO_PREFIX: u8 = 2;
pub const MODE_FIX_CRCS: u8 = 4;

/// The valid prefix's frames, as (group, records); the first `n` are written.
pub fn prefix_frames(n: usize) -> Vec<(u64, Vec<Rec>)> {
    let frames = vec![
        (1, vec![Rec::put(10, b"alpha", b"one")]),
        (2, vec![Rec::put(11, b"beta", b"two"), Rec::del(12, b"alpha"), Rec::put(13, b"gamma", &[0x5a; 300])]),
        (2, vec![Rec::put(14, b"alpha", b"again").expiring(NOW_MS + 60_000)]),
        (3, vec![Rec::put(15, b"delta", b""), Rec::put(16, b"expired", b"gone").expiring(NOW_MS - 1)]),
    ];
    frames.into_iter().take(n).collect()
}

/// The other segment: sealed segment 1 when the fuzz bytes are the active segment, or active
/// segment 2 when they are the sealed one.
fn other_frames(sealed_target: bool) -> (u64, Vec<(u64, Vec<Rec>)>) {
    if sealed_target {
        (20, vec![(20, vec![Rec::put(100, b"beta", b"newer"), Rec::put(101, b"active", b"a")])])
    } else {
        (
            1,
            vec![
                (1, vec![Rec::put(1, b"alpha", b"old"), Rec::put(2, b"sealed", b"s")]),
                (2, vec![Rec::del(3, b"beta")]),
            ],
        )
    }
}

/// Keys worth probing with `get` besides the expected ones.
fn probe_keys() -> Vec<Vec<u8>> {
    ["alpha", "beta", "gamma", "delta", "expired", "sealed", "active"].iter().map(|k| k.as_bytes().to_vec()).collect()
}

pub fn check(data: &[u8]) {
    let (mode, n, fuzz) = match data {
        [mode, n, rest @ ..] => (*mode, usize::from(*n % 5), rest),
        _ => return,
    };
    let sealed_target = mode & MODE_SEALED != 0;
    let with_prefix = mode & MODE_NO_PREFIX == 0;
    let (target_id, other_id) = if sealed_target { (1, 2) } else { (2, 1) };

    let prefix = prefix_frames(n);
    let mut target = if with_prefix { log_segment(target_id, 1, &prefix) } else { Vec::new() };
    let fuzz_at = target.len();
    target.extend_from_slice(fuzz);
    if mode & MODE_FIX_CRCS != 0 {
        let magic = ferrocask::format::FRAME_MAGIC.to_le_bytes();
        let starts: Vec<usize> =
            (fuzz_at..target.len().saturating_sub(3)).filter(|&i| target[i..i + 4] == magic).collect();
        for at in starts.into_iter().rev() {
            fix_frame_crcs(&mut target, at);
        }
    }
    let (other_first_group, other) = other_frames(sealed_target);

    let fs = SimFs::new();
    fs.write_file_durable(&path("MANIFEST"), &manifest(&[1, 2], 2));
    fs.write_file_durable(&path(&segment_name(target_id)), &target);
    fs.write_file_durable(&path(&segment_name(other_id)), &log_segment(other_id, other_first_group, &other));

    let opened = expect_corruption(open(&fs));
    if with_prefix {
        let walk = walk(&target, SEGMENT_HEADER_BYTES, 1);
        let corrupt = match walk.bad_at {
            None => false,
            Some(_) if sealed_target => true,
            Some(at) => later_frame(&target, at, walk.last_group + 2),
        };
        match (&opened, corrupt) {
            (Some(_), true) => panic!("open succeeded over damage in durable data ({walk:?})"),
            (None, false) => panic!("open failed with Corruption over a torn tail or clean data ({walk:?})"),
            _ => {}
        }
        if let Some(store) = &opened {
            let mut all = if sealed_target { walk.records.clone() } else { records_of(&other) };
            all.extend(if sealed_target { records_of(&other) } else { walk.records.clone() });
            let mut keys = probe_keys();
            keys.extend(all.iter().map(|r| r.key.clone()));
            assert_holds(store, &resolve(&all), &keys);
        }
    }
    if let Some(store) = opened {
        reopen_round_trip(&fs, store);
    }
}

/// A layout the check starts from, for the seed corpus: mode, prefix count, fuzz bytes.
pub fn input(mode: u8, n: u8, fuzz: &[u8]) -> Vec<u8> {
    let mut out = vec![mode, n];
    out.extend_from_slice(fuzz);
    out
}
