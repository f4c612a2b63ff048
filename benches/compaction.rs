//! Compaction and hint-file benchmark (issue "Compaction and hint files").
//!
//! `cargo bench --bench compaction` (or `-- --keys 200000` for a quicker run). Prints:
//! 1. bytes on disk after writing N keys (16 B / 100 B), overwriting each 3 times, deleting 10%
//!    and compacting, against the live key+value bytes (and those plus record headers);
//! 2. open time of that store with hint files and without (hints deleted), in keys/s;
//! 3. durable put throughput at 32 threads with and without a compaction running, same run.
//!
//! `-- --steady skewed|uniform [--live-gb 1] [--overwrite-gb 3]` runs the steady-state workloads
//! of `compaction/steady.rs` instead (`--no-recycle`: with `Options::recycle_segments` off).

#[path = "compaction/steady.rs"]
mod steady;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrocask::{Batch, Options, Store};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
const RECORD_HEADER_BYTES: u64 = 16;

fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    k
}

fn value(i: u64, round: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8..16].copy_from_slice(&round.to_le_bytes());
    v
}

fn options() -> Options {
    Options { auto_compact: false, ..Options::default() }
}

fn load(store: &Store, keys: u64, round: u64) {
    for chunk in (0..keys).collect::<Vec<_>>().chunks(2000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(key(i), value(i, round));
        }
        store.write(batch).unwrap();
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

/// Durable puts from 32 threads for `secs`, on keys disjoint from the loaded ones.
fn puts_32_threads(store: &Store, secs: f64, base: u64) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..32u64 {
            let (store, stop, done) = (store, &stop, &done);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = base + t * 1_000_000_000 + i;
                    store.put(key(k), value(k, 0)).unwrap();
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs)); // the measurement window
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Writes dirty pages back and drops the page cache, so the next open reads from the disk.
fn drop_page_cache() -> bool {
    let synced = std::process::Command::new("sync").status().is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let Some(mode) = arg("--steady") {
        let gb = |name, default| arg(name).map_or(default, |v| v.parse().expect("a number of GB"));
        assert!(mode == "skewed" || mode == "uniform", "--steady takes skewed or uniform");
        let recycle = !args.iter().any(|a| a == "--no-recycle");
        steady::run(mode == "skewed", gb("--live-gb", 1.0), gb("--overwrite-gb", 3.0), recycle);
        return;
    }
    let keys: u64 = args
        .iter()
        .position(|a| a == "--keys")
        .and_then(|i| args.get(i + 1))
        .map_or(1_000_000, |v| v.parse().expect("--keys takes a number"));
    let root = tempfile::tempdir_in(".").unwrap();
    let dir = root.path().join("store");

    println!("ferrocask compaction bench: {keys} keys, {KEY_BYTES} B keys, {VALUE_BYTES} B values");
    let store = Store::open_with(&dir, options()).unwrap();
    for round in 0..4 {
        load(&store, keys, round); // the first write and 3 overwrites
    }
    let deleted = keys / 10;
    for chunk in (0..deleted).collect::<Vec<_>>().chunks(2000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.delete(key(i * 10));
        }
        store.write(batch).unwrap();
    }
    let live = keys - deleted;
    let before = dir_bytes(&dir);

    // 3. puts at 32 threads without, then with a compaction running (same store, same run).
    let quiet = puts_32_threads(&store, 3.0, 10_000_000_000);
    let compacting = AtomicBool::new(true);
    let (during, report) = std::thread::scope(|s| {
        let compactor = s.spawn(|| {
            let r = store.compact().unwrap();
            compacting.store(false, Ordering::Relaxed);
            r
        });
        let mut rates = Vec::new();
        while compacting.load(Ordering::Relaxed) {
            rates.push(puts_32_threads(&store, 0.5, 20_000_000_000 + rates.len() as u64 * 100_000_000));
        }
        (rates, compactor.join().unwrap())
    });
    let during_mean = during.iter().sum::<f64>() / during.len().max(1) as f64;
    // Compact again so the puts written during the measurements are folded in too.
    let report2 = store.compact().unwrap();
    let after = dir_bytes(&dir);
    let stats = store.stats();
    drop(store);

    let live_kv = live * (KEY_BYTES + VALUE_BYTES) as u64;
    let extra_keys = stats.live_keys as u64 - live;
    let live_kv_all = stats.live_keys as u64 * (KEY_BYTES + VALUE_BYTES) as u64;
    let live_with_headers =
        stats.live_keys as u64 * (KEY_BYTES + VALUE_BYTES) as u64 + stats.live_keys as u64 * RECORD_HEADER_BYTES;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| bytes on disk before compaction | {:.1} MB |", before as f64 / 1e6);
    println!(
        "| first compaction | {:.2} s, {} segments read, {} written, {:.1} MB reclaimed |",
        report.duration.as_secs_f64(),
        report.segments_read,
        report.segments_written,
        report.bytes_reclaimed as f64 / 1e6
    );
    println!("| second compaction | {:.2} s |", report2.duration.as_secs_f64());
    println!("| live keys | {} ({} loaded + {} from the put measurements) |", stats.live_keys, live, extra_keys);
    println!(
        "| live key+value bytes | {:.1} MB (loaded keys only: {:.1} MB) |",
        live_kv_all as f64 / 1e6,
        live_kv as f64 / 1e6
    );
    println!("| bytes on disk after compaction | {:.1} MB |", after as f64 / 1e6);
    println!("| disk / live key+value | {:.3}x |", after as f64 / live_kv_all as f64);
    println!("| disk / (live key+value + record headers) | {:.3}x |", after as f64 / live_with_headers as f64);

    // 2. open with hints, then without; each warm (files in the page cache) and cold (after
    // dropping the page cache, as after a reboot; needs root, else the cold rows are skipped).
    let open = |write_hints: bool| {
        let t = Instant::now();
        let store = Store::open_with(&dir, Options { write_hints, ..options() }).unwrap();
        let took = t.elapsed();
        let report = store.recovery_report().clone();
        (took, report, store.len())
    };
    let cold_hints = drop_page_cache().then(|| open(true));
    let (warm_hints, report, n) = open(true);
    assert!(report.segments_from_hints > 0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hint") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let cold_replay = drop_page_cache().then(|| open(false));
    let (warm_replay, report, _) = open(false);
    assert_eq!(report.segments_from_hints, 0);
    let row = |what: &str, t: Duration| {
        println!("| {what} | {:.1} ms ({:.2} M keys/s) |", t.as_secs_f64() * 1e3, n as f64 / t.as_secs_f64() / 1e6);
    };
    row("open with hints, warm", warm_hints);
    row("open by replay, warm", warm_replay);
    println!("| replay / hints, warm | {:.1}x |", warm_replay.as_secs_f64() / warm_hints.as_secs_f64());
    if let (Some((hints, ..)), Some((replay, ..))) = (cold_hints, cold_replay) {
        row("open with hints, cold", hints);
        row("open by replay, cold", replay);
        println!("| replay / hints, cold | {:.1}x |", replay.as_secs_f64() / hints.as_secs_f64());
    }
    println!("| durable puts, 32 threads, no compaction | {quiet:.0} ops/s |");
    println!("| durable puts, 32 threads, compaction running | {during_mean:.0} ops/s ({} windows) |", during.len());
    println!("| during / without | {:.2}x |", during_mean / quiet);
}
