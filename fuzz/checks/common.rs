//! Helpers shared by the checks: store options, hand-built segments, and a model of what
//! recovery must produce from a list of records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocask::format::{
    decode_frame, encode_record, encode_segment_header, finish_frame, start_frame, FrameSalt, RecordKind,
    SegmentHeader, SegmentKind, SEGMENT_BYTES_MIN,
};
use ferrocask::testing::SimFs;
use ferrocask::{Error, ManualClock, Options, Store, SyncMode};

/// The store's directory on the simulated file system.
pub const DIR: &str = "/db";
/// The (frozen) time every check runs at, in Unix milliseconds.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// The frame salt of every segment these checks lay out. A store draws a random one per segment;
/// a fixed one keeps the checks (and the committed corpus) deterministic.
pub const SALT: FrameSalt = FrameSalt(0x5eed_5a17_f0cc_ac1a);

/// Whether `FUZZ_TRACE` is set: checks then print what they do, to explain a finding
/// (`FUZZ_TRACE=1 cargo test --test fuzz_corpus` or the fuzz binary run on the one input).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// Keys and values as the model holds them.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Small, deterministic options: tiny segments, a frozen clock, no automatic compaction.
pub fn options() -> Options {
    Options {
        segment_bytes: SEGMENT_BYTES_MIN,
        stripes: 4,
        sync: SyncMode::Always,
        preallocate_bytes: 0,
        auto_compact: false,
        clock: Arc::new(ManualClock::new(NOW_MS)),
        ..Options::default()
    }
}

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

pub fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

pub fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

pub fn hint_name(id: u64) -> String {
    format!("{id:016x}.hint")
}

pub fn open(fs: &Arc<SimFs>) -> ferrocask::Result<Store> {
    Store::open_on(fs.clone(), &dir(), options())
}

/// One record as a test writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub kind: RecordKind,
    pub seq: u64,
    pub expires_ms: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Rec {
    pub fn put(seq: u64, key: &[u8], value: &[u8]) -> Rec {
        Rec { kind: RecordKind::Put, seq, expires_ms: 0, key: key.to_vec(), value: value.to_vec() }
    }

    pub fn del(seq: u64, key: &[u8]) -> Rec {
        Rec { kind: RecordKind::Delete, seq, expires_ms: 0, key: key.to_vec(), value: Vec::new() }
    }

    pub fn expiring(mut self, expires_ms: u64) -> Rec {
        self.expires_ms = expires_ms;
        self
    }
}

/// One frame holding `records`, with group number `group`, checksummed under [`SALT`].
pub fn frame(group: u64, records: &[Rec]) -> Vec<u8> {
    frame_with_salt(group, records, SALT)
}

/// One frame checksummed under `salt`: under another salt than [`SALT`], what someone who does
/// not know a segment's salt can write (inside a value, say).
pub fn frame_with_salt(group: u64, records: &[Rec], salt: FrameSalt) -> Vec<u8> {
    let mut out = Vec::new();
    let start = start_frame(&mut out);
    for r in records {
        encode_record(&mut out, r.kind, r.seq, r.expires_ms, &r.key, &r.value);
    }
    finish_frame(&mut out, start, group, records.len() as u32, salt);
    out
}

pub fn segment_header(kind: SegmentKind, id: u64, first_group: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_segment_header(&SegmentHeader { kind, id, first_group, salt: SALT }, &mut out);
    out
}

/// A log segment: its header, then `frames` as (group, records).
pub fn log_segment(id: u64, first_group: u64, frames: &[(u64, Vec<Rec>)]) -> Vec<u8> {
    let mut out = segment_header(SegmentKind::Log, id, first_group);
    for (group, records) in frames {
        out.extend(frame(*group, records));
    }
    out
}

pub fn records_of(frames: &[(u64, Vec<Rec>)]) -> Vec<Rec> {
    frames.iter().flat_map(|(_, r)| r.iter().cloned()).collect()
}

/// What recovery must make of `records`, given in log order (older segments first): per key the
/// record with the highest sequence number wins (the later one on a tie), and the key is live if
/// that record is a put that has not expired.
pub fn resolve(records: &[Rec]) -> Model {
    let mut winners: BTreeMap<&[u8], &Rec> = BTreeMap::new();
    for r in records {
        match winners.get(&r.key[..]) {
            Some(w) if w.seq > r.seq => {}
            _ => {
                winners.insert(&r.key, r);
            }
        }
    }
    winners
        .into_iter()
        .filter(|(_, r)| r.kind == RecordKind::Put && (r.expires_ms == 0 || r.expires_ms > NOW_MS))
        .map(|(k, r)| (k.to_vec(), r.value.clone()))
        .collect()
}

/// How a walk over a log segment's frames ends, as the format defines it (DESIGN.md): frames
/// follow each other with the same group as their predecessor or the next one (the first: the
/// header's first group); the data ends at the end of the file or where only zeros remain.
#[derive(Debug)]
pub struct Walk {
    pub records: Vec<Rec>,
    /// Offset of the first bad frame, `None` for a clean end.
    pub bad_at: Option<usize>,
    /// Group of the last accepted frame (`first_group - 1` if none).
    pub last_group: u64,
}

pub fn walk(bytes: &[u8], start: usize, first_group: u64) -> Walk {
    let mut at = start;
    let mut last = first_group.wrapping_sub(1);
    let mut first = true;
    let mut records = Vec::new();
    while at < bytes.len() {
        if bytes[at..].iter().all(|&b| b == 0) {
            break;
        }
        let frame = match decode_frame(&bytes[at..], SALT) {
            Ok(f) if f.group == last.wrapping_add(1) || (!first && f.group == last) => f,
            _ => return Walk { records, bad_at: Some(at), last_group: last },
        };
        for r in frame.records() {
            let r = r.expect("records of an accepted frame decode");
            records.push(Rec {
                kind: r.kind,
                seq: r.seq,
                expires_ms: r.expires_ms,
                key: r.key.to_vec(),
                value: r.value.to_vec(),
            });
        }
        last = frame.group;
        first = false;
        at += frame.len;
    }
    Walk { records, bad_at: None, last_group: last }
}

/// Whether a valid frame with a group of at least `group_min` starts at or after `from`.
pub fn later_frame(bytes: &[u8], from: usize, group_min: u64) -> bool {
    (from..bytes.len()).any(|at| decode_frame(&bytes[at..], SALT).is_ok_and(|f| f.group >= group_min))
}

/// Everything the store returns through `iter`, checked against `get` for each key.
pub fn snapshot(store: &Store) -> Model {
    let mut model = Model::new();
    for (key, value) in store.iter() {
        let value = value.into_vec();
        let got = store.get(&key).expect("get of an iterated key").map(|v| v.into_vec());
        assert_eq!(got.as_ref(), Some(&value), "get disagrees with iter for key {key:?}");
        assert!(model.insert(key.clone(), value).is_none(), "iter returned key {key:?} twice");
    }
    assert_eq!(store.len(), model.len(), "len disagrees with iter");
    model
}

/// The store holds exactly `model`; `keys` lists further keys to probe with `get`.
pub fn assert_holds(store: &Store, model: &Model, keys: &[Vec<u8>]) {
    for key in keys.iter().chain(model.keys()) {
        let got = store.get(key).expect("get").map(|v| v.into_vec());
        assert_eq!(got.as_ref(), model.get(key), "get({key:?})");
    }
    assert_eq!(&snapshot(store), model, "the store's contents");
}

/// An opened store keeps working: new writes (a new key, and an overwrite of the first key it
/// holds, which must win over whatever sequence number the old record carries) are acknowledged,
/// and after a clean reopen the store holds what it held plus those writes.
pub fn reopen_round_trip(fs: &Arc<SimFs>, store: Store) {
    let mut model = snapshot(&store);
    let mut writes = vec![b"\xffprobe".to_vec()];
    writes.extend(model.keys().next().cloned());
    for key in writes {
        store.put(&key, b"round trip").expect("a write to an opened store");
        model.insert(key, b"round trip".to_vec());
    }
    assert_holds(&store, &model, &[]);
    drop(store);
    let store = open(fs).expect("reopen after a clean close");
    assert_holds(&store, &model, &[]);
}

/// Open must succeed or fail with `Corruption`; nothing else is possible on a fault-free file
/// system.
pub fn expect_corruption(result: ferrocask::Result<Store>) -> Option<Store> {
    match result {
        Ok(store) => Some(store),
        Err(Error::Corruption { .. }) => None,
        Err(e) => panic!("open failed with something other than Corruption: {e}"),
    }
}

/// The hash key of every store these checks lay out (hint entries hold key hashes made with it).
pub const HASH_KEY: [u8; 16] = *b"ferrocask-fuzzer";

pub fn manifest(segments: &[u64], active: u64) -> Vec<u8> {
    ferrocask::format::encode_manifest(&ferrocask::format::Manifest {
        segments: segments.to_vec(),
        active,
        next_segment_id: segments.iter().max().map_or(1, |m| m + 1),
        hash_key: HASH_KEY,
    })
}

/// Makes the fuzzer's life easier: from `at`, while the bytes start with the frame magic and hold
/// the whole frame their header announces, rewrites that frame's checksum to the right one and
/// moves past it (under [`SALT`]). Without this the fuzzer almost never produces a frame the
/// decoder accepts.
pub fn fix_frame_crcs(buf: &mut [u8], mut at: usize) {
    use ferrocask::format::{FRAME_HEADER_BYTES, FRAME_MAGIC};
    while buf.len() - at.min(buf.len()) >= FRAME_HEADER_BYTES {
        let word = |i: usize| u32::from_le_bytes(buf[at + i..at + i + 4].try_into().expect("4 bytes"));
        if word(0) != FRAME_MAGIC {
            return;
        }
        let Some(len) = (word(8) as usize).checked_add(FRAME_HEADER_BYTES) else { return };
        if buf.len() - at < len {
            return;
        }
        let crc = super::record_decode::crc32(&[&SALT.0.to_le_bytes(), &buf[at + 8..at + len]].concat());
        buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += len;
    }
}
