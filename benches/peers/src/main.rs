//! `peers`: the same durable workloads against ferrocask and peer embedded stores.
//!
//! ```text
//! peers [--keys 1000000] [--secs 2] [--slice 0.25] [--runs 3] [--only ferrocask,redb,...] [--threads 1,4,32]
//!       [--get-threads 1,2] [--batch 10000] [--dir DIR] [--out FILE.md] [--svg FILE.svg]
//!       [--csv FILE.csv] [--no-cold] [--ranges]
//! ```
//! `--ranges` runs only the range workloads (`ranges.rs`) against ferrocask, redb, fjall and
//! SQLite.
//! See BENCHMARKS.md at the repository root for what each workload does.

mod ranges;
mod report;
mod stores;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use stores::{Engine, Kv};

pub const KEY_BYTES: usize = 16;
pub const VALUE_BYTES: usize = 100;
pub const BIG_VALUE_BYTES: usize = 4096;

#[derive(Clone, Debug)]
pub struct Config {
    pub keys: u64,
    pub secs: f64,
    pub slice: f64,
    pub runs: usize,
    pub engines: Vec<Engine>,
    pub threads: Vec<usize>,
    pub get_threads: Vec<usize>,
    pub batch: usize,
    pub dir: PathBuf,
    pub out: PathBuf,
    pub svg: PathBuf,
    pub csv: PathBuf,
    pub cold: bool,
    pub profile_open: bool,
    pub ranges: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: peers [--keys N] [--secs S] [--slice S] [--runs R] [--only a,b] [--threads 1,4,32] [--get-threads 1,2] \
         [--batch N] [--dir DIR] [--out FILE.md] [--svg FILE.svg] [--csv FILE.csv] [--no-cold] [--ranges]\n\
         stores: {}",
        Engine::all().iter().map(|e| e.name()).collect::<Vec<_>>().join(",")
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut c = Config {
        keys: 1_000_000,
        secs: 2.0,
        slice: 0.25,
        runs: 3,
        engines: Engine::all(),
        threads: vec![1, 4, 32],
        get_threads: vec![1, 2],
        batch: 10_000,
        dir: here.join("data"),
        out: here.join("results.md"),
        svg: here.join("peers.svg"),
        csv: here.join("results.csv"),
        cold: true,
        profile_open: false,
        ranges: false,
    };
    let mut args = std::env::args().skip(1);
    let list = |s: String| -> Vec<usize> {
        s.split(',').map(|x| x.trim().parse().unwrap_or_else(|_| usage())).collect()
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--keys" => c.keys = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => c.secs = val().parse().unwrap_or_else(|_| usage()),
            "--slice" => c.slice = val().parse().unwrap_or_else(|_| usage()),
            "--runs" => c.runs = val().parse().unwrap_or_else(|_| usage()),
            "--batch" => c.batch = val().parse().unwrap_or_else(|_| usage()),
            "--threads" => c.threads = list(val()),
            "--get-threads" => c.get_threads = list(val()),
            "--dir" => c.dir = val().into(),
            "--out" => c.out = val().into(),
            "--svg" => c.svg = val().into(),
            "--csv" => c.csv = val().into(),
            "--no-cold" => c.cold = false,
            "--profile-open" => c.profile_open = true,
            "--ranges" => c.ranges = true,
            "--only" => {
                let names = val();
                c.engines = names
                    .split(',')
                    .map(|n| {
                        Engine::all().into_iter().find(|e| e.name() == n.trim()).unwrap_or_else(|| {
                            eprintln!("unknown store {n:?}");
                            usage()
                        })
                    })
                    .collect();
            }
            _ => usage(),
        }
    }
    if c.runs == 0 || c.keys == 0 || c.batch == 0 || !(c.slice > 0.0) || !(c.secs > 0.0) {
        usage()
    }
    c
}

/// Key `i` of the loaded key set: 8 scrambled bytes, then `i`, so keys are unique and spread.
pub fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&z.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// What one measurement of one workload produced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// ops/s for throughput workloads; milliseconds for open; bytes for space.
    pub value: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Workload identifiers, in table order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// The disk's floor: one thread, 116 B pwrite into a pre-written file + fdatasync.
    Floor,
    Put { threads: usize, value: usize },
    Get { threads: usize },
    Load,
    OpenWarm,
    OpenCold,
    DiskBytes,
}

impl Workload {
    pub fn label(&self) -> String {
        match self {
            Workload::Put { threads, value } if *value == VALUE_BYTES => format!("durable put, {threads} thr"),
            Workload::Put { threads, value } => format!("durable put, {threads} thr, {} KiB values", value / 1024),
            Workload::Get { threads } => format!("random get, {threads} thr"),
            Workload::Floor => "disk floor: 116 B pwrite + fdatasync, 1 thr (no store)".into(),
            Workload::Load => "bulk load (batched, synced per batch)".into(),
            Workload::OpenWarm => "open loaded store until first get, warm cache".into(),
            Workload::OpenCold => "open loaded store until first get, cold cache".into(),
            Workload::DiskBytes => "bytes on disk after 1+3 writes/key + compaction".into(),
        }
    }
    pub fn unit(&self) -> &'static str {
        match self {
            Workload::Floor | Workload::Put { .. } | Workload::Get { .. } => "ops/s",
            Workload::Load => "keys/s",
            Workload::OpenWarm | Workload::OpenCold => "ms",
            Workload::DiskBytes => "MiB",
        }
    }
    pub fn higher_is_better(&self) -> bool {
        matches!(self, Workload::Floor | Workload::Put { .. } | Workload::Get { .. } | Workload::Load)
    }
    pub fn has_latency(&self) -> bool {
        matches!(self, Workload::Floor | Workload::Put { .. } | Workload::Get { .. })
    }
}

/// All samples: workload -> engine -> one sample per run.
pub type Results = BTreeMap<Workload, BTreeMap<Engine, Vec<Sample>>>;

/// Runs `op` on `threads` threads for `secs`; returns ops/s over the wall time and latency
/// percentiles over every op.
fn timed<F>(threads: usize, secs: f64, op: F) -> Sample
where
    F: Fn(&mut fastrand::Rng, &mut Vec<u8>) + Sync,
{
    let (lat, wall) = timed_raw(threads, secs, op);
    summarize(lat, wall)
}

fn summarize(mut lat: Vec<u32>, wall: f64) -> Sample {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Sample { value: lat.len() as f64 / wall, p50_us: pct(0.50), p99_us: pct(0.99) }
}

/// Runs `op` on every store in turn, in slices of `cfg.slice` seconds, until each has had
/// `cfg.secs`: all stores then see the same mix of the shared disk's fast and slow spells
/// (its sync latency flips between ~0.1 ms and ~4 ms within seconds here).
fn interleaved<F>(cfg: &Config, kvs: &[(Engine, &dyn Kv)], threads: usize, op: F) -> Vec<Sample>
where
    F: Fn(&dyn Kv, &mut fastrand::Rng, &mut Vec<u8>) + Sync,
{
    let slices = (cfg.secs / cfg.slice).round().max(1.0) as usize;
    let per = cfg.secs / slices as f64;
    let mut acc: Vec<(Vec<u32>, f64)> = kvs.iter().map(|_| (Vec::new(), 0.0)).collect();
    for _ in 0..slices {
        for (i, (_, kv)) in kvs.iter().enumerate() {
            let (lat, wall) = timed_raw(threads, per, |rng, buf| op(*kv, rng, buf));
            acc[i].0.extend_from_slice(&lat);
            acc[i].1 += wall;
        }
    }
    acc.into_iter().map(|(lat, wall)| summarize(lat, wall)).collect()
}

fn timed_raw<F>(threads: usize, secs: f64, op: F) -> (Vec<u32>, f64)
where
    F: Fn(&mut fastrand::Rng, &mut Vec<u8>) + Sync,
{
    let barrier = Barrier::new(threads + 1);
    let dur = Duration::from_secs_f64(secs);
    let (lat, start, end) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(0x5EED ^ (t as u64) << 32 ^ fastrand::u64(..));
                    let mut buf = Vec::new();
                    let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let begin = Instant::now();
                    let mut now = begin;
                    while now.duration_since(begin) < dur {
                        op(&mut rng, &mut buf);
                        let after = Instant::now();
                        lat.push(after.duration_since(now).as_nanos().min(u32::MAX as u128) as u32);
                        now = after;
                    }
                    (lat, now)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        let mut end = start;
        for h in handles {
            let (lat, fin) = h.join().expect("worker panicked");
            all.extend_from_slice(&lat);
            end = end.max(fin);
        }
        (all, start, end)
    });
    (lat, end.duration_since(start).as_secs_f64())
}

fn fresh_dir(cfg: &Config, engine: Engine, what: &str) -> PathBuf {
    let d = cfg.dir.join(format!("{}-{what}", engine.name()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// du-style: the sum of the sizes of all files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let m = e.metadata().expect("metadata");
        if m.is_dir() {
            total += dir_bytes(&e.path());
        } else {
            total += m.len();
        }
    }
    total
}

fn random_value(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// Writes keys 0..n in key order through the store's bulk path, fresh random values each.
fn bulk_write(kv: &dyn Kv, sorted: &[[u8; KEY_BYTES]], batch: usize, rng: &mut fastrand::Rng) {
    for chunk in sorted.chunks(batch) {
        let items: Vec<([u8; KEY_BYTES], Vec<u8>)> =
            chunk.iter().map(|k| (*k, random_value(rng, VALUE_BYTES))).collect();
        kv.load(&items);
    }
}

/// What the disk gives a single synced writer right now (it is shared and its latency drifts),
/// recorded once per run under ferrocask's name so the tables can show it.
fn disk_floor(cfg: &Config, results: &mut Results) {
    use std::os::unix::fs::FileExt;
    let path = cfg.dir.join("floor.tmp");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).expect("floor file");
    f.write_all_at(&vec![0u8; 4 << 20], 0).expect("prewrite");
    f.sync_all().expect("sync");
    let n = std::sync::atomic::AtomicU64::new(0);
    let s = timed(1, cfg.secs.min(1.0), |_, _| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 30_000;
        f.write_all_at(&[7u8; 116], i * 116).expect("pwrite");
        f.sync_data().expect("fdatasync");
    });
    eprintln!("  disk floor: {:.0} syncs/s p50 {:.1} us p99 {:.1} us", s.value, s.p50_us, s.p99_us);
    record(results, Workload::Floor, Engine::Ferrocask, s);
    let _ = std::fs::remove_file(&path);
}

fn drop_caches() -> bool {
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Close-then-open: time from `open` until the first get returns the value.
fn time_open(engine: Engine, dir: &Path) -> f64 {
    let t = Instant::now();
    let kv = engine.open(dir);
    assert_eq!(kv.get(&key(0)), Some(VALUE_BYTES), "{}: first get after open", engine.name());
    let ms = t.elapsed().as_secs_f64() * 1e3;
    drop(kv);
    ms
}

fn record(results: &mut Results, w: Workload, e: Engine, s: Sample) {
    results.entry(w).or_default().entry(e).or_default().push(s);
}

fn put_round(cfg: &Config, order: &[Engine], threads: usize, vlen: usize, results: &mut Results) {
    // Durable puts of fresh random keys into empty stores, interleaved.
    let dirs: Vec<PathBuf> = order.iter().map(|&e| fresh_dir(cfg, e, "put")).collect();
    let opened: Vec<Box<dyn Kv>> = order.iter().zip(&dirs).map(|(e, d)| e.open(d)).collect();
    let kvs: Vec<(Engine, &dyn Kv)> = order.iter().copied().zip(opened.iter().map(|b| &**b)).collect();
    let samples = interleaved(cfg, &kvs, threads, |kv, rng, buf| {
        let k = key(rng.u64(..));
        buf.resize(vlen, 0);
        rng.fill(buf);
        kv.put(&k, buf);
    });
    drop(kvs);
    drop(opened);
    for ((e, d), s) in order.iter().zip(&dirs).zip(samples) {
        let _ = std::fs::remove_dir_all(d);
        eprintln!(
            "  {:<15} put {threads:>2} thr {vlen:>4} B: {:>10.0} ops/s p50 {:>8.1} us p99 {:>8.1} us",
            e.name(),
            s.value,
            s.p50_us,
            s.p99_us
        );
        record(results, Workload::Put { threads, value: vlen }, *e, s);
    }
}

fn read_round(cfg: &Config, order: &[Engine], sorted: &[[u8; KEY_BYTES]], results: &mut Results, cold_ok: &mut bool) {
    // Load N keys into each store (bulk path), interleaved random gets, then close and reopen.
    let n = sorted.len();
    let dirs: Vec<PathBuf> = order.iter().map(|&e| fresh_dir(cfg, e, "read")).collect();
    let mut opened: Vec<Box<dyn Kv>> = Vec::new();
    for (&e, d) in order.iter().zip(&dirs) {
        let kv = e.open(d);
        let t = Instant::now();
        bulk_write(&*kv, sorted, cfg.batch, &mut fastrand::Rng::with_seed(7));
        let load = n as f64 / t.elapsed().as_secs_f64();
        eprintln!("  {:<15} load {n} keys: {load:>10.0} keys/s", e.name());
        record(results, Workload::Load, e, Sample { value: load, ..Sample::default() });
        opened.push(kv);
    }
    let kvs: Vec<(Engine, &dyn Kv)> = order.iter().copied().zip(opened.iter().map(|b| &**b)).collect();
    for &threads in &cfg.get_threads {
        let samples = interleaved(cfg, &kvs, threads, |kv, rng, _| {
            let i = rng.u64(..n as u64);
            assert_eq!(kv.get(&key(i)), Some(VALUE_BYTES), "get of a loaded key");
        });
        for (e, s) in order.iter().zip(samples) {
            eprintln!("  {:<15} get {threads:>2} thr: {:>10.0} ops/s p50 {:>8.2} us p99 {:>8.2} us", e.name(), s.value, s.p50_us, s.p99_us);
            record(results, Workload::Get { threads }, *e, s);
        }
    }
    drop(kvs);
    drop(opened);
    for (&e, dir) in order.iter().zip(&dirs) {
        let name = e.name();
        let warm = time_open(e, dir);
        eprintln!("  {name:<15} open (warm): {warm:.1} ms");
        record(results, Workload::OpenWarm, e, Sample { value: warm, ..Sample::default() });
        if cfg.cold && *cold_ok {
            if drop_caches() {
                let cold = time_open(e, dir);
                eprintln!("  {name:<15} open (cold): {cold:.1} ms");
                record(results, Workload::OpenCold, e, Sample { value: cold, ..Sample::default() });
            } else {
                eprintln!("  cannot drop the page cache: cold opens skipped");
                *cold_ok = false;
            }
        }
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn space_phase(cfg: &Config, engine: Engine, sorted: &[[u8; KEY_BYTES]], results: &mut Results) {
    // Space: write every key, overwrite every key 3 times, compact, close, sum file sizes.
    let name = engine.name();
    let n = sorted.len();
    let mut rng = fastrand::Rng::with_seed(11);
    let dir = fresh_dir(cfg, engine, "space");
    let mut kv = engine.open(&dir);
    for _ in 0..4 {
        bulk_write(&*kv, sorted, cfg.batch, &mut rng);
    }
    let t = Instant::now();
    kv.compact();
    let compact_s = t.elapsed().as_secs_f64();
    drop(kv);
    let bytes = dir_bytes(&dir) as f64;
    let live = (n * (KEY_BYTES + VALUE_BYTES)) as f64;
    eprintln!("  {name:<15} disk after compaction ({compact_s:.1} s): {:.1} MiB = {:.2}x live", bytes / 1048576.0, bytes / live);
    record(results, Workload::DiskBytes, engine, Sample { value: bytes, ..Sample::default() });
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--profile-open`: load the keys into `<dir>/profile-<store>` once (kept), then time opens.
/// Meant to run under a profiler, e.g. valgrind --tool=callgrind.
fn profile_open(cfg: &Config, sorted: &[[u8; KEY_BYTES]]) {
    for &e in &cfg.engines {
        let dir = cfg.dir.join(format!("profile-{}", e.name()));
        if !dir.exists() {
            let kv = e.open(&dir);
            bulk_write(&*kv, sorted, cfg.batch, &mut fastrand::Rng::with_seed(3));
        }
        for _ in 0..cfg.runs {
            eprintln!("{} open: {:.1} ms", e.name(), time_open(e, &dir));
        }
    }
}

fn main() {
    let cfg = parse_args();
    std::fs::create_dir_all(&cfg.dir).expect("create data dir");
    if cfg.ranges {
        ranges::run(&cfg);
        return;
    }
    let mut sorted: Vec<[u8; KEY_BYTES]> = (0..cfg.keys).map(key).collect();
    sorted.sort_unstable();
    if cfg.profile_open {
        profile_open(&cfg, &sorted);
        return;
    }
    let mut results = Results::new();
    let mut cold_ok = cfg.cold;
    let started = Instant::now();
    let mut put_cases: Vec<(usize, usize)> = cfg.threads.iter().map(|&t| (t, VALUE_BYTES)).collect();
    put_cases.push((1, BIG_VALUE_BYTES));
    for run in 0..cfg.runs {
        // Workload-major and interleaved: all stores are open at once and take turns in short
        // slices (see `interleaved`), because the shared disk's latency drifts. The order of
        // stores rotates from run to run, so no store always goes first.
        let mut order = cfg.engines.clone();
        let shift = run % order.len();
        order.rotate_left(shift);
        let stamp = |what: &str| eprintln!("run {}/{} {what} ({:.0} s so far)", run + 1, cfg.runs, started.elapsed().as_secs_f64());
        stamp("disk floor");
        disk_floor(&cfg, &mut results);
        for &(threads, vlen) in &put_cases {
            stamp(&format!("puts {threads} thr {vlen} B"));
            put_round(&cfg, &order, threads, vlen, &mut results);
        }
        stamp("load, gets, open");
        let readers: Vec<Engine> = order.iter().copied().filter(|e| e.reads_too()).collect();
        read_round(&cfg, &readers, &sorted, &mut results, &mut cold_ok);
        stamp("space");
        for &e in order.iter().filter(|e| e.reads_too()) {
            space_phase(&cfg, e, &sorted, &mut results);
        }
    }
    let md = report::markdown(&cfg, &results, started.elapsed());
    println!("{md}");
    std::fs::write(&cfg.out, &md).expect("write markdown");
    std::fs::write(&cfg.csv, report::csv(&results)).expect("write csv");
    std::fs::write(&cfg.svg, report::svg(&cfg, &results)).expect("write svg");
    eprintln!("wrote {}, {}, {}", cfg.out.display(), cfg.csv.display(), cfg.svg.display());
}
