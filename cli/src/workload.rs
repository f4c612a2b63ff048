//! The benchmark workloads, shared by `ferrocask bench` (the CLI) and `benches/store.rs` (the root
//! crate includes this file with `#[path]`), so both measure exactly the same thing.
//!
//! Only `std`, `ferrocask`, `parking_lot`, `tempfile` and `tokio` (for the async writers) are
//! used, which both crates depend on.
//! Every ferrocask figure is printed beside a baseline measured in the same run on the same file
//! system: a raw `pwrite` + `fdatasync` append loop for durable puts, and 64 shards of
//! `parking_lot::RwLock<HashMap<Vec<u8>, Vec<u8>>>` for gets. The raw loop goes through the
//! store's own real file system (`ferrocask::testing::RealFs`), so it makes the same positional
//! write and sync calls on every platform (`FlushFileBuffers` on Windows, `F_FULLFSYNC` on macOS).
//!
//! Workloads that sync are compared *interleaved*, as `benches/peers` does: the baselines and the
//! store take turns in slices of [`SLICE_SECS`] until each has had its time, so all of them see
//! the same mix of the disk's fast and slow spells (a disk's sync latency can flip between 0.1 ms
//! and 4 ms within seconds; a baseline measured once, at the start, made a store look 6x faster
//! than raw `fdatasync`). Throughputs are medians over the slices, with their p25-p75 spread, and
//! a ratio is the median of the per-slice ratios of two workloads that ran in the same round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ferrocask::testing::{OpenMode, RealFs, Rng, Vfs, VfsFile};
use ferrocask::{Batch, Options, Store, Update};
use parking_lot::RwLock;

/// Key length used by every workload.
pub const KEY_BYTES: usize = 16;
/// Value length used by every workload.
pub const VALUE_BYTES: usize = 100;
/// Bytes per record in the raw append baseline, about what ferrocask writes per put: a record is
/// 132 bytes (16-byte record header + 16-byte key + 100-byte value, `format/record.rs`), and each
/// group commit adds a 24-byte frame header (156 bytes for a lone put, less per put when writers
/// share a frame). Kept at 140, the size the recorded measurements (DESIGN.md) were made with.
pub const RAW_RECORD_BYTES: usize = 140;
/// Seconds of one slice of an interleaved comparison: short enough that neighbouring slices see
/// the same disk spell, long enough to hold many syncs (the value `benches/peers` uses).
pub const SLICE_SECS: f64 = 0.25;
/// Bytes a raw baseline loop may append in a whole run (the preallocated one is this long).
const RAW_FILE_BYTES: u64 = 64 << 20;
/// Key numbers of one slice of a workload start at `slice << SLICE_KEY_SHIFT`, so that every
/// slice writes fresh keys (a thread's keys are `thread << THREAD_KEY_SHIFT` above that).
const SLICE_KEY_SHIFT: u32 = 32;
/// See [`SLICE_KEY_SHIFT`]: room for 2^16 slices of 2^32 keys per thread below the thread bits,
/// and for 2^12 threads or tasks below the 60 bits a key holds.
const THREAD_KEY_SHIFT: u32 = 48;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Keys loaded for the get, memory and open workloads.
    pub keys: usize,
    /// Seconds each put workload (and each raw baseline) runs, in slices of `slice_secs`.
    pub put_secs: f64,
    /// Seconds of one slice of an interleaved comparison ([`SLICE_SECS`]).
    pub slice_secs: f64,
    /// Seconds each get workload (and each get baseline) runs.
    pub get_secs: f64,
    /// Writer thread counts for durable puts.
    pub put_threads: Vec<usize>,
    /// Reader thread counts for gets.
    pub get_threads: Vec<usize>,
    /// Run the put workloads (and their raw baselines).
    pub run_puts: bool,
    /// Run the get workloads (and the RwLock<HashMap> baseline).
    pub run_gets: bool,
    /// Run the open workloads (replay, then hints after compact).
    pub run_open: bool,
    /// Run the read-modify-write and async workloads: increments of one hot key, and async
    /// writers on a tokio runtime, each beside plain durable puts at the same concurrency.
    pub run_rmw: bool,
    /// Thread counts for the hot-key increments.
    pub incr_threads: Vec<usize>,
    /// Async writer tasks, compared with `async_vs_threads` blocking threads.
    pub async_tasks: usize,
    /// Blocking writer threads the async writers are compared with.
    pub async_vs_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: 1_000_000,
            put_secs: 2.0,
            slice_secs: SLICE_SECS,
            get_secs: 1.5,
            put_threads: vec![1, 4, 32],
            get_threads: vec![1, 2],
            run_puts: true,
            run_gets: true,
            run_open: true,
            run_rmw: true,
            incr_threads: vec![1, 32],
            async_tasks: 1000,
            async_vs_threads: 32,
        }
    }
}

/// Where the run is; the CLI draws a progress bar, the bench binary prints stage names.
pub trait Progress {
    /// A new stage of `total` steps (0 = unknown).
    fn stage(&self, label: &str, total: u64);
    /// `n` more steps done.
    fn inc(&self, n: u64);
}

/// Throughput and latency of one workload.
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// Operations per second, all threads together: the median over its slices when it ran
    /// interleaved (see `slices`), else over the whole run.
    pub ops_per_sec: f64,
    /// Operations per second of each slice, in run order (empty if it did not run in slices).
    pub slices: Vec<f64>,
    /// Median latency in nanoseconds.
    pub p50_ns: u64,
    /// 99th percentile latency in nanoseconds.
    pub p99_ns: u64,
    /// Operations done.
    pub ops: u64,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Keys loaded.
    pub keys: usize,
    /// Seconds of one slice of the interleaved comparisons.
    pub slice_secs: f64,
    /// Raw append + fdatasync, 1 thread, file growing with each write.
    pub raw_append: Measure,
    /// Raw write + fdatasync, 1 thread, into a preallocated, zero-filled, synced file.
    pub raw_prealloc: Measure,
    /// Durable puts, by thread count.
    pub puts: Vec<(usize, Measure)>,
    /// Records per sync in the put runs (the group-commit factor), by thread count.
    pub records_per_sync: Vec<(usize, f64)>,
    /// Gets of random existing keys, by thread count.
    pub gets: Vec<(usize, Measure)>,
    /// The RwLock<HashMap> baseline, by thread count.
    pub map_gets: Vec<(usize, Measure)>,
    /// Seconds to load the keys (batches of 1000, durable).
    pub load_secs: f64,
    /// RSS growth per key while loading the store.
    pub index_bytes_per_key: f64,
    /// RSS growth per key while loading the HashMap baseline.
    pub map_bytes_per_key: f64,
    /// Open by replaying every segment.
    pub open_replay: Duration,
    /// Segments replayed by that open.
    pub open_replay_segments: usize,
    /// Open after `compact`, from hint files.
    pub open_hints: Duration,
    /// Increments of one hot key (`Store::update`), by thread count, with records per sync.
    pub increments: Vec<(usize, Measure, f64)>,
    /// Plain durable puts measured beside each increment run, same thread count.
    pub increment_puts: Vec<(usize, Measure, f64)>,
    /// Async writers (`put_async`) on a tokio runtime: tasks, throughput, records per sync.
    pub async_puts: Option<(usize, Measure, f64)>,
    /// Blocking threads measured beside the async writers.
    pub async_thread_puts: Option<(usize, Measure, f64)>,
    /// Segments loaded from hints by that open.
    pub open_hint_segments: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs every workload in `dir` (which should be empty and is left full of files).
pub fn run(dir: &Path, cfg: &Config, progress: &dyn Progress) -> Result<Results, BoxError> {
    let mut r = Results { keys: cfg.keys, slice_secs: cfg.slice_secs, ..Results::default() };
    if cfg.run_puts {
        run_puts(dir, cfg, progress, &mut r)?;
    }
    if cfg.run_rmw {
        run_rmw(dir, cfg, progress, &mut r)?;
    }
    if cfg.run_gets || cfg.run_open {
        run_loaded(dir, cfg, progress, &mut r)?;
    }
    Ok(r)
}

/// One workload of an interleaved comparison: given a slice's seconds and its number, runs one
/// slice and returns each operation's latency (ns) and the slice's wall time.
type Slice<'a> = Box<dyn FnMut(f64, u64) -> Result<(Vec<u64>, Duration), BoxError> + 'a>;

/// Runs `workloads` in turn, one slice each per round, until each has had `cfg.put_secs`: all of
/// them see the same disk spells, and slice `i` of one ran next to slice `i` of the others.
fn interleaved(
    cfg: &Config,
    progress: &dyn Progress,
    label: &str,
    workloads: &mut [Slice<'_>],
) -> Result<Vec<Measure>, BoxError> {
    let rounds = (cfg.put_secs / cfg.slice_secs).round().max(1.0) as u64;
    let secs = cfg.put_secs / rounds as f64;
    progress.stage(label, rounds * workloads.len() as u64);
    let mut runs: Vec<Sliced> = workloads.iter().map(|_| Sliced::default()).collect();
    for round in 0..rounds {
        for (workload, run) in workloads.iter_mut().zip(&mut runs) {
            let (lat, elapsed) = workload(secs, round)?;
            run.add(lat, elapsed);
            progress.inc(1);
        }
    }
    Ok(runs.into_iter().map(Sliced::finish).collect())
}

/// A workload's slices as they come in.
#[derive(Default)]
struct Sliced {
    lat: Vec<u64>,
    elapsed: Duration,
    rates: Vec<f64>,
}

impl Sliced {
    fn add(&mut self, lat: Vec<u64>, elapsed: Duration) {
        self.rates.push(lat.len() as f64 / elapsed.as_secs_f64().max(1e-9));
        self.lat.extend(lat);
        self.elapsed += elapsed;
    }

    /// Latency percentiles over every slice's operations; throughput the median slice's.
    fn finish(self) -> Measure {
        let mut m = summarize(self.lat, self.elapsed, 1);
        m.ops_per_sec = quartiles(&self.rates).1;
        m.slices = self.rates;
        m
    }
}

/// (p25, median, p75) of `v`, interpolated between the nearest values (so the median of an
/// even count is the mean of the middle two); zeros if empty.
pub fn quartiles(v: &[f64]) -> (f64, f64, f64) {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let Some(last) = sorted.len().checked_sub(1) else { return 0.0 };
        let pos = last as f64 * p;
        let (low, high) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[low] + (sorted[high] - sorted[low]) * (pos - low as f64)
    };
    (at(0.25), at(0.5), at(0.75))
}

/// `a`'s throughput over `b`'s, slice by slice (slice `i` of each ran in the same round); one
/// ratio of the whole runs if either did not run in slices.
pub fn slice_ratios(a: &Measure, b: &Measure) -> Vec<f64> {
    if a.slices.is_empty() || a.slices.len() != b.slices.len() {
        return vec![ratio(a.ops_per_sec, b.ops_per_sec)];
    }
    a.slices.iter().zip(&b.slices).map(|(x, y)| ratio(*x, *y)).collect()
}

/// The median of [`slice_ratios`].
pub fn median_ratio(a: &Measure, b: &Measure) -> f64 {
    quartiles(&slice_ratios(a, b)).1
}

/// Durable puts from `threads` threads of fresh keys into `store`, one slice at a time.
fn put_slices(store: &Store, threads: usize) -> Slice<'_> {
    Box::new(move |secs, slice| timed_threads(threads, secs, slice, |_, i| store.put(key(i), value(i))))
}

/// Hot-key increments and async writers, each beside plain puts at the same concurrency, all
/// interleaved (the disk's sync latency drifts, so neighbours in time are the fair comparison).
fn run_rmw(dir: &Path, cfg: &Config, progress: &dyn Progress, r: &mut Results) -> Result<(), BoxError> {
    let fresh = |name: String| Store::open_with(dir.join(name), Options::default());
    let mut pairs = Vec::new();
    for &threads in &cfg.incr_threads {
        pairs.push((threads, fresh(format!("incr-puts-{threads}"))?, fresh(format!("incr-{threads}"))?));
    }
    let threads = cfg.async_vs_threads;
    let blocking = fresh("async-threads".into())?;
    let tasks = Arc::new(fresh("async-tasks".into())?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    let mut workloads: Vec<Slice<'_>> = Vec::new();
    for (threads, plain, incr) in &pairs {
        let threads = *threads;
        workloads.push(put_slices(plain, threads));
        workloads.push(Box::new(move |secs, slice| {
            timed_threads(threads, secs, slice, |_, _| incr.update("hot", increment).map(drop))
        }));
    }
    workloads.push(put_slices(&blocking, threads));
    workloads.push(Box::new(|secs, slice| async_puts(&rt, &tasks, cfg.async_tasks, secs, slice)));
    let label = "durable puts beside increments of one key and beside async writers, interleaved";
    let mut measured = interleaved(cfg, progress, label, &mut workloads)?.into_iter();
    drop(workloads);
    let mut next = || measured.next().expect("one measure per workload");
    for (threads, plain, incr) in &pairs {
        r.increment_puts.push((*threads, next(), plain.stats().records_per_sync));
        r.increments.push((*threads, next(), incr.stats().records_per_sync));
    }
    r.async_thread_puts = Some((threads, next(), blocking.stats().records_per_sync));
    r.async_puts = Some((cfg.async_tasks, next(), tasks.stats().records_per_sync));
    Ok(())
}

/// A decimal counter's next value.
fn increment(v: Option<&[u8]>) -> Update {
    let n: u64 = v.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
    Update::Set((n + 1).to_string().into_bytes())
}

/// Durable puts of fresh keys from `tasks` tokio tasks (on `rt`) for `secs`: slice `slice`.
fn async_puts(
    rt: &tokio::runtime::Runtime,
    store: &Arc<Store>,
    tasks: usize,
    secs: f64,
    slice: u64,
) -> Result<(Vec<u64>, Duration), BoxError> {
    rt.block_on(async {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs);
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let store = Arc::clone(store);
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = ((t as u64) << THREAD_KEY_SHIFT) | (slice << SLICE_KEY_SHIFT) | (1 << 63);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        store.put_async(key(i), value(i)).await?;
                        lat.push(t0.elapsed().as_nanos() as u64);
                        i += 1;
                    }
                    Ok::<_, ferrocask::Error>(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.map_err(|e| -> BoxError { e.into() })??);
        }
        Ok::<_, BoxError>((all.concat(), started.elapsed()))
    })
}

/// The raw baselines and the durable puts at each thread count, interleaved.
fn run_puts(dir: &Path, cfg: &Config, progress: &dyn Progress, r: &mut Results) -> Result<(), BoxError> {
    let mut append = RawLoop::create(dir.join("raw-append.dat"), false)?;
    let mut prealloc = RawLoop::create(dir.join("raw-prealloc.dat"), true)?;
    let stores = cfg
        .put_threads
        .iter()
        .map(|threads| Store::open_with(dir.join(format!("puts-{threads}")), Options::default()))
        .collect::<Result<Vec<Store>, _>>()?;
    let mut workloads: Vec<Slice<'_>> =
        vec![Box::new(|secs, _| append.run(secs)), Box::new(|secs, _| prealloc.run(secs))];
    for (store, &threads) in stores.iter().zip(&cfg.put_threads) {
        workloads.push(put_slices(store, threads));
    }
    let label = "durable puts interleaved with raw write + fdatasync loops";
    let mut measured = interleaved(cfg, progress, label, &mut workloads)?.into_iter();
    drop(workloads);
    let mut next = || measured.next().expect("one measure per workload");
    r.raw_append = next();
    r.raw_prealloc = next();
    for (store, &threads) in stores.iter().zip(&cfg.put_threads) {
        r.puts.push((threads, next()));
        r.records_per_sync.push((threads, store.stats().records_per_sync));
    }
    Ok(())
}

/// Loads the keys (measuring index memory), then gets and opens over that store.
fn run_loaded(dir: &Path, cfg: &Config, progress: &dyn Progress, r: &mut Results) -> Result<(), BoxError> {
    // Load the keys, watching RSS: the index is all that should grow.
    let store_dir = dir.join("store");
    let no_hints = Options { write_hints: false, auto_compact: false, ..Options::default() };
    let store = Store::open_with(&store_dir, no_hints.clone())?;
    progress.stage(&format!("loading {} keys", cfg.keys), cfg.keys as u64);
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut batch = Batch::new();
    for i in 0..cfg.keys {
        batch.put(key(i as u64), value(i as u64));
        if batch.len() == 1000 || i + 1 == cfg.keys {
            store.write(std::mem::take(&mut batch))?;
            progress.inc(1000.min(cfg.keys as u64));
        }
    }
    r.load_secs = started.elapsed().as_secs_f64();
    r.index_bytes_per_key = rss_bytes().saturating_sub(rss_before) as f64 / cfg.keys.max(1) as f64;

    if cfg.run_gets {
        run_gets(cfg, progress, &store, r)?;
    }
    drop(store);
    if cfg.run_open {
        run_open(&store_dir, cfg, progress, no_hints, r)?;
    }
    Ok(())
}

fn run_gets(cfg: &Config, progress: &dyn Progress, store: &Store, r: &mut Results) -> Result<(), BoxError> {
    progress.stage("warming up reads", cfg.keys as u64);
    for i in 0..cfg.keys {
        std::hint::black_box(store.get(key(i as u64))?);
    }
    for &threads in &cfg.get_threads {
        progress.stage(&format!("gets, {threads} threads"), 0);
        let m = gets(threads, cfg.get_secs, cfg.keys, |k| store.get(k).ok().flatten().map(|v| v.len()))?;
        r.gets.push((threads, m));
    }

    progress.stage("RwLock<HashMap> baseline", cfg.keys as u64);
    let rss_before = rss_bytes();
    let map = ShardedMap::new();
    for i in 0..cfg.keys {
        map.insert(key(i as u64).to_vec(), value(i as u64).to_vec());
    }
    r.map_bytes_per_key = rss_bytes().saturating_sub(rss_before) as f64 / cfg.keys.max(1) as f64;
    for &threads in &cfg.get_threads {
        progress.stage(&format!("RwLock<HashMap> gets, {threads} threads"), 0);
        let m = gets(threads, cfg.get_secs, cfg.keys, |k| map.get(k).map(|v| v.len()))?;
        r.map_gets.push((threads, m));
    }
    drop(map);
    Ok(())
}

fn run_open(
    store_dir: &Path,
    cfg: &Config,
    progress: &dyn Progress,
    no_hints: Options,
    r: &mut Results,
) -> Result<(), BoxError> {
    progress.stage("open by replay", 0);
    let started = Instant::now();
    let store = Store::open_with(store_dir, no_hints)?;
    r.open_replay = started.elapsed();
    r.open_replay_segments = store.recovery_report().segments_replayed;
    check_len(&store, cfg.keys)?;
    drop(store);

    progress.stage("compact (writes hint files)", 0);
    let with_hints = Options { auto_compact: false, ..Options::default() };
    let store = Store::open_with(store_dir, with_hints.clone())?;
    store.compact()?;
    drop(store);
    progress.stage("open with hints", 0);
    let started = Instant::now();
    let store = Store::open_with(store_dir, with_hints)?;
    r.open_hints = started.elapsed();
    r.open_hint_segments = store.recovery_report().segments_from_hints;
    check_len(&store, cfg.keys)?;
    Ok(())
}

fn check_len(store: &Store, keys: usize) -> Result<(), BoxError> {
    if store.len() != keys {
        return Err(format!("reopened store holds {} keys instead of {keys}", store.len()).into());
    }
    Ok(())
}

/// The 16-byte key of key number `i`.
pub fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = *b"k000000000000000";
    let mut n = i;
    for b in k[1..].iter_mut().rev() {
        *b = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
    }
    k
}

/// The 100-byte value of key number `i`.
pub fn value(i: u64) -> [u8; VALUE_BYTES] {
    let mut v = [b'v'; VALUE_BYTES];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// Resident set size of this process, from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// The raw baseline: appends `RAW_RECORD_BYTES` with `pwrite`, then `fdatasync`, in a loop on
/// one thread, one slice at a time, each slice going on where the last stopped. With
/// `prealloc`, the file is first filled with zeros and synced, so a sync need not persist a new
/// length. The file is removed when the loop is dropped.
struct RawLoop {
    path: PathBuf,
    file: Box<dyn VfsFile>,
    offset: u64,
}

impl RawLoop {
    fn create(path: PathBuf, prealloc: bool) -> Result<RawLoop, BoxError> {
        let fs = RealFs;
        match fs.remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let file = fs.open(&path, OpenMode::CreateNew)?;
        if prealloc {
            let zeros = vec![0u8; 1 << 20];
            for i in 0..RAW_FILE_BYTES >> 20 {
                file.write_at(&zeros, i << 20)?;
            }
            file.sync_data()?;
        }
        if let Some(parent) = path.parent() {
            fs.sync_dir(parent)?;
        }
        Ok(RawLoop { path, file, offset: 0 })
    }

    /// One slice of `secs` (shorter once the file is full).
    fn run(&mut self, secs: f64) -> Result<(Vec<u64>, Duration), BoxError> {
        let record = [0xA5u8; RAW_RECORD_BYTES];
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut lat = Vec::new();
        let started = Instant::now();
        while Instant::now() < deadline && self.offset + RAW_RECORD_BYTES as u64 <= RAW_FILE_BYTES {
            let t = Instant::now();
            self.file.write_at(&record, self.offset)?;
            self.file.sync_data()?;
            lat.push(t.elapsed().as_nanos() as u64);
            self.offset += RAW_RECORD_BYTES as u64;
        }
        Ok((lat, started.elapsed()))
    }
}

impl Drop for RawLoop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs `op(thread, i)` with `i = thread << 48 | slice << 32, +1, ...` from `threads` threads
/// for `secs` seconds, timing each call: slice `slice` of a workload.
fn timed_threads(
    threads: usize,
    secs: f64,
    slice: u64,
    op: impl Fn(usize, u64) -> ferrocask::Result<()> + Sync,
) -> Result<(Vec<u64>, Duration), BoxError> {
    let barrier = Barrier::new(threads + 1);
    let failed = AtomicUsize::new(0);
    let (lat, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, failed, op) = (&barrier, &failed, &op);
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut i = ((t as u64) << THREAD_KEY_SHIFT) | (slice << SLICE_KEY_SHIFT);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        if op(t, i).is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        lat.push(t0.elapsed().as_nanos() as u64);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let lat: Vec<Vec<u64>> = handles.into_iter().map(|h| h.join().unwrap_or_default()).collect();
        (lat.concat(), started.elapsed())
    });
    if failed.load(Ordering::Relaxed) > 0 {
        return Err("an operation failed during the benchmark".into());
    }
    Ok((lat, elapsed))
}

/// Every this many gets, one is timed on its own (timing each would cost as much as a get).
const GET_SAMPLE: u64 = 16;

/// Gets of random keys among `keys` from `threads` threads for `secs` seconds.
fn gets(
    threads: usize,
    secs: f64,
    keys: usize,
    get: impl Fn(&[u8]) -> Option<usize> + Sync,
) -> Result<Measure, BoxError> {
    let barrier = Barrier::new(threads + 1);
    let missing = AtomicUsize::new(0);
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, missing, get) = (&barrier, &missing, &get);
                s.spawn(move || {
                    let mut rng = Rng::new(t as u64);
                    let mut lat = Vec::with_capacity(1 << 16);
                    let mut ops = 0u64;
                    barrier.wait();
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    'run: loop {
                        for _ in 0..GET_SAMPLE - 1 {
                            let k = key(rng.below(keys as u64));
                            if get(&k) != Some(VALUE_BYTES) {
                                missing.fetch_add(1, Ordering::Relaxed);
                                break 'run;
                            }
                        }
                        let k = key(rng.below(keys as u64));
                        let t0 = Instant::now();
                        let found = get(&k);
                        lat.push(t0.elapsed().as_nanos() as u64);
                        ops += GET_SAMPLE;
                        if found != Some(VALUE_BYTES) {
                            missing.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        if t0 >= deadline {
                            break;
                        }
                    }
                    (lat, ops)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let results: Vec<(Vec<u64>, u64)> = handles.into_iter().map(|h| h.join().unwrap_or_default()).collect();
        (results, started.elapsed())
    });
    if missing.load(Ordering::Relaxed) > 0 {
        return Err("a loaded key was missing during the get benchmark".into());
    }
    let ops: u64 = results.iter().map(|r| r.1).sum();
    let lat: Vec<u64> = results.into_iter().flat_map(|r| r.0).collect();
    let mut m = summarize(lat, elapsed, GET_SAMPLE);
    m.ops = ops;
    m.ops_per_sec = ops as f64 / elapsed.as_secs_f64();
    Ok(m)
}

fn summarize(mut lat: Vec<u64>, elapsed: Duration, ops_per_sample: u64) -> Measure {
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    let ops = lat.len() as u64 * ops_per_sample;
    let ops_per_sec = ops as f64 / elapsed.as_secs_f64().max(1e-9);
    Measure { ops_per_sec, p50_ns: pct(0.50), p99_ns: pct(0.99), ops, slices: Vec::new() }
}

/// The get baseline: 64 shards of `RwLock<HashMap<Vec<u8>, Vec<u8>>>`, std's default (SipHash)
/// hasher inside each, shard picked by a cheap multiplicative hash of the key.
struct ShardedMap {
    shards: Vec<RwLock<HashMap<Vec<u8>, Vec<u8>>>>,
}

impl ShardedMap {
    fn new() -> ShardedMap {
        ShardedMap { shards: (0..64).map(|_| RwLock::new(HashMap::new())).collect() }
    }

    fn shard(&self, key: &[u8]) -> &RwLock<HashMap<Vec<u8>, Vec<u8>>> {
        let mut h = 0xCBF2_9CE4_8422_2325u64;
        for chunk in key.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        &self.shards[(h >> 58) as usize]
    }

    fn insert(&self, key: Vec<u8>, value: Vec<u8>) {
        self.shard(&key).write().insert(key, value);
    }

    /// The value, cloned, as a store's get returns an owned value.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.shard(key).read().get(key).cloned()
    }
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 10_000 {
        format!("{:.0} us", ns as f64 / 1e3)
    } else if ns >= 1_000 {
        format!("{:.2} us", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// `median (p25-p75)` of a workload's slices, or its whole-run figure if it ran in one piece.
fn with_spread(m: &Measure, precision: usize) -> String {
    let (p25, median, p75) = quartiles(&m.slices);
    if m.slices.is_empty() {
        format!("{:.precision$}", m.ops_per_sec)
    } else {
        format!("{median:.precision$} ({p25:.precision$}-{p75:.precision$})")
    }
}

/// A ratio of two workloads, `median (p25-p75)` over the rounds they shared.
fn ratio_with_spread(a: &Measure, b: &Measure) -> String {
    let ratios = slice_ratios(a, b);
    let (p25, median, p75) = quartiles(&ratios);
    if ratios.len() == 1 {
        format!("{median:.2}x")
    } else {
        format!("{median:.2}x ({p25:.2}-{p75:.2})")
    }
}

fn row(out: &mut String, label: &str, m: &Measure, base: Option<(&str, &Measure)>) {
    use std::fmt::Write;
    let _ = write!(out, "{label:<30} {:>24} {:>10} {:>10}", with_spread(m, 0), fmt_ns(m.p50_ns), fmt_ns(m.p99_ns));
    if let Some((name, b)) = base {
        let _ = write!(out, "  | {name:<26} {:>11.0}  {:>19}", b.ops_per_sec, ratio_with_spread(m, b));
    }
    out.push('\n');
}

/// Whether each target of the performance issue is met: (description, measured, met). Ratios
/// are medians of per-slice ratios.
pub fn targets(r: &Results) -> Vec<(String, String, bool)> {
    let mut t = Vec::new();
    let put = |n| r.puts.iter().find(|p| p.0 == n).map(|p| &p.1);
    if let Some(p1) = put(1) {
        let x = median_ratio(p1, &r.raw_append);
        t.push(("durable put, 1 thread >= 1.0x raw append loop".into(), format!("{x:.2}x"), x >= 1.0));
        let x = median_ratio(p1, &r.raw_prealloc);
        t.push(("  (aim) >= 1.0x raw preallocated loop".into(), format!("{x:.2}x"), x >= 1.0));
    }
    if let Some(p32) = put(32) {
        let x = median_ratio(p32, &r.raw_append);
        t.push(("durable put, 32 threads >= 8x raw 1-thread loop".into(), format!("{x:.2}x"), x >= 8.0));
    }
    let get2 = r.gets.iter().find(|g| g.0 == 2).map(|g| &g.1);
    let map2 = r.map_gets.iter().find(|g| g.0 == 2).map(|g| &g.1);
    if let (Some(g), Some(m)) = (get2, map2) {
        let x = median_ratio(g, m);
        t.push(("get, 2 threads >= 0.5x RwLock<HashMap> x64".into(), format!("{x:.2}x"), x >= 0.5));
    }
    if r.load_secs > 0.0 {
        let b = r.index_bytes_per_key;
        t.push(("index memory <= 64 bytes/key beyond the key".into(), format!("{b:.1} B/key"), b <= 64.0));
    }
    let incr = |n| r.increments.iter().find(|p| p.0 == n).map(|p| &p.1);
    let incr_put = |n| r.increment_puts.iter().find(|p| p.0 == n).map(|p| &p.1);
    if let (Some(i1), Some(i32)) = (incr(1), incr(32)) {
        let x = median_ratio(i32, i1);
        t.push(("increments of one key, 32 thr >= 5x 1 thr".into(), format!("{x:.2}x"), x >= 5.0));
    }
    if let (Some(i32), Some(p32)) = (incr(32), incr_put(32)) {
        let x = median_ratio(i32, p32);
        t.push(("increments, 32 thr >= 0.7x plain puts, 32 thr".into(), format!("{x:.2}x"), x >= 0.7));
    }
    if let (Some((tasks, a, _)), Some((threads, b, _))) = (&r.async_puts, &r.async_thread_puts) {
        let x = median_ratio(a, b);
        t.push((format!("async puts, {tasks} tasks >= 1.0x {threads} blocking thr"), format!("{x:.2}x"), x >= 1.0));
    }
    if !r.open_hints.is_zero() {
        let ms = r.open_hints.as_secs_f64() * 1e3;
        let scaled = if r.keys == 1_000_000 { String::new() } else { format!(" ({} keys)", r.keys) };
        t.push(("open of 1M keys with hints <= 100 ms".into(), format!("{ms:.1} ms{scaled}"), ms <= 100.0));
    }
    t
}

/// The human-readable table.
pub fn table(r: &Results) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:>24} {:>10} {:>10}  | {:<26} {:>11}  {:>19}",
        "workload", "ops/s median (p25-p75)", "p50", "p99", "baseline (same slices)", "ops/s", "ratio (p25-p75)"
    );
    if !r.puts.is_empty() {
        row(&mut out, "raw append+fdatasync, 1 thr", &r.raw_append, None);
        row(&mut out, "raw prealloc+fdatasync, 1 thr", &r.raw_prealloc, None);
    }
    for (threads, m) in &r.puts {
        let label = format!("put (durable), {threads} thr");
        row(&mut out, &label, m, Some(("raw append, 1 thread", &r.raw_append)));
        if *threads == 1 {
            row(&mut out, "", m, Some(("raw prealloc, 1 thread", &r.raw_prealloc)));
        }
    }
    for ((threads, m, _), (_, p, _)) in r.increments.iter().zip(&r.increment_puts) {
        let label = format!("increment one key, {threads} thr");
        row(&mut out, &label, m, Some((&format!("plain put, {threads} thr"), p)));
    }
    if let (Some((tasks, a, _)), Some((threads, b, _))) = (&r.async_puts, &r.async_thread_puts) {
        let label = format!("put_async, {tasks} tokio tasks");
        row(&mut out, &label, a, Some((&format!("blocking put, {threads} thr"), b)));
    }
    for ((threads, m), (_, b)) in r.gets.iter().zip(&r.map_gets) {
        let label = format!("get, {threads} thr");
        row(&mut out, &label, m, Some((&format!("RwLock<HashMap>x64, {threads} thr"), b)));
    }
    let _ = writeln!(out);
    if let Some(n) = [r.puts.first().map(|p| &p.1), r.increments.first().map(|p| &p.1)]
        .into_iter()
        .flatten()
        .map(|m| m.slices.len())
        .next()
    {
        let _ = writeln!(
            out,
            "writes ran interleaved with their baselines, {n} slice{} of {:.2} s each, in turn: ops/s is the \
             median slice (p25-p75 of the slices), a ratio the median of the ratios of slices run in the \
             same round, p50/p99 are over every operation",
            if n == 1 { "" } else { "s" },
            r.slice_secs
        );
    }
    if !r.gets.is_empty() {
        let _ = writeln!(out, "gets and their baseline ran one after the other (memory only, no disk spells)");
    }
    let rps: Vec<String> = r.records_per_sync.iter().map(|(t, x)| format!("{t} thr: {x:.1}")).collect();
    if !rps.is_empty() {
        let _ = writeln!(out, "records per sync (group commit): {}", rps.join(", "));
    }
    let mut rmw: Vec<String> = Vec::new();
    for ((t, _, i), (_, _, p)) in r.increments.iter().zip(&r.increment_puts) {
        rmw.push(format!("increments {t} thr: {i:.1} (plain puts beside: {p:.1})"));
    }
    if let (Some((tasks, _, a)), Some((threads, _, b))) = (&r.async_puts, &r.async_thread_puts) {
        rmw.push(format!("{tasks} async tasks: {a:.1} ({threads} threads beside: {b:.1})"));
    }
    if !rmw.is_empty() {
        let _ = writeln!(out, "records per sync: {}", rmw.join("; "));
    }
    if r.load_secs > 0.0 {
        let _ = writeln!(out, "load {} keys (batches of 1000): {:.2} s", r.keys, r.load_secs);
        let _ = writeln!(
        out,
        "index memory: {:.1} bytes/key (RSS growth while loading; keys are not kept in RAM), RwLock<HashMap> baseline: {:.1} bytes/key",
            r.index_bytes_per_key, r.map_bytes_per_key
        );
    }
    if !r.open_hints.is_zero() {
        let _ = writeln!(
        out,
        "open {} keys by replay: {:.1} ms ({} segments replayed); with hints after compact: {:.1} ms ({} segments from hints)",
        r.keys,
        r.open_replay.as_secs_f64() * 1e3,
        r.open_replay_segments,
        r.open_hints.as_secs_f64() * 1e3,
            r.open_hint_segments
        );
    }
    let _ = writeln!(out);
    for (what, measured, met) in targets(r) {
        let _ = writeln!(out, "[{}] {what:<50} {measured}", if met { "met " } else { "MISS" });
    }
    out
}

/// One JSON object with every figure.
pub fn json(r: &Results) -> String {
    // `ops_per_sec` is the median slice for interleaved workloads; p25/p75 and the slice count
    // say how much the slices spread.
    let fields = |m: &Measure| {
        let (p25, _, p75) = quartiles(&m.slices);
        format!(
            "\"ops_per_sec\":{:.1},\"ops_per_sec_p25\":{p25:.1},\"ops_per_sec_p75\":{p75:.1},\"slices\":{},\"p50_ns\":{},\"p99_ns\":{}",
            m.ops_per_sec,
            m.slices.len(),
            m.p50_ns,
            m.p99_ns
        )
    };
    let m = |m: &Measure| format!("{{{}}}", fields(m));
    let by = |v: &[(usize, Measure)]| {
        let items: Vec<String> = v.iter().map(|(t, x)| format!("\"{t}\":{}", m(x))).collect();
        format!("{{{}}}", items.join(","))
    };
    // Read-modify-write and async runs carry their records per sync.
    let with_rps = |t: usize, x: &Measure, rps: f64| format!("\"{t}\":{{{},\"records_per_sync\":{rps:.1}}}", fields(x));
    let by_rps = |v: &[(usize, Measure, f64)]| {
        let items: Vec<String> = v.iter().map(|(t, x, rps)| with_rps(*t, x, *rps)).collect();
        format!("{{{}}}", items.join(","))
    };
    let one = |v: &Option<(usize, Measure, f64)>| match v {
        Some((t, x, rps)) => format!("{{{}}}", with_rps(*t, x, *rps)),
        None => "{}".to_string(),
    };
    let rps: Vec<String> = r.records_per_sync.iter().map(|(t, x)| format!("\"{t}\":{x:.1}")).collect();
    format!(
        "{{\"keys\":{},\"slice_secs\":{},\"raw_append\":{},\"raw_prealloc\":{},\"puts\":{},\"records_per_sync\":{{{}}},\"gets\":{},\"map_gets\":{},\"index_bytes_per_key\":{:.1},\"map_bytes_per_key\":{:.1},\"open_replay_ms\":{:.2},\"open_hints_ms\":{:.2},\"load_secs\":{:.3},\"increments\":{},\"increment_puts\":{},\"async_puts\":{},\"async_thread_puts\":{}}}",
        r.keys,
        r.slice_secs,
        m(&r.raw_append),
        m(&r.raw_prealloc),
        by(&r.puts),
        rps.join(","),
        by(&r.gets),
        by(&r.map_gets),
        r.index_bytes_per_key,
        r.map_bytes_per_key,
        r.open_replay.as_secs_f64() * 1e3,
        r.open_hints.as_secs_f64() * 1e3,
        r.load_secs,
        by_rps(&r.increments),
        by_rps(&r.increment_puts),
        one(&r.async_puts),
        one(&r.async_thread_puts),
    )
}
