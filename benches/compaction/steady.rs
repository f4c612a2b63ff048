//! Steady-state compaction: a store of `--live-gb` of live data (default 1 GB of 1,000-byte
//! values), default options with automatic compaction on, overwritten by writer threads until
//! `--overwrite-gb` of values were written (default 3 GB), either *skewed* (90% of overwrites go
//! to 5% of the keys) or *uniform*. Samples disk bytes every 250 ms and prints, besides a
//! disk/live series (CSV, for the chart in BENCHMARKS.md):
//! disk / live (max, end), write amplification, peak extra disk of one compaction, and durable
//! put throughput and p99 while compacting and not.
//!
//! `cargo bench --bench compaction -- --steady skewed` (or `uniform`).
//!
//! Only the public API is used, and the project's seeded PRNG (`ferrocask::testing::Rng`, the
//! same splitmix64 sequence this file had before). Lines marked `// selective` use statistics
//! that the store had only from selective compaction on; the full-rewrite figures in
//! BENCHMARKS.md come from this file with those lines removed, run on the commit before it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrocask::testing::Rng;
use ferrocask::{Batch, Options, Store};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 1000;
/// Record header (16) + key + value: what one live key takes in a segment.
const RECORD_BYTES: u64 = 16 + KEY_BYTES as u64 + VALUE_BYTES as u64;
const WRITERS: u64 = 16;
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    k
}

fn value(i: u64, round: u64) -> Vec<u8> {
    let mut v = vec![b'v'; VALUE_BYTES];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8..16].copy_from_slice(&round.to_le_bytes());
    v
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

/// A counter of this process from /proc/self/io.
fn proc_io(field: &str) -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(": ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Bytes this process passed to write(2) and friends so far (`wchar` in /proc/self/io).
fn wchar() -> u64 {
    proc_io("wchar")
}

/// Bytes of page cache this process dirtied for the device, less those truncated away before
/// they were written (`write_bytes - cancelled_write_bytes`). On this kernel (6.18, large page
/// cache folios) a write into a file region cached as a 2 MiB folio counts the whole folio,
/// although the block layer writes only the dirty blocks: an upper bound, see BENCHMARKS.md.
fn dirtied_bytes() -> u64 {
    proc_io("write_bytes").saturating_sub(proc_io("cancelled_write_bytes"))
}

/// The block device whose counters `device_bytes` reads (`FERROCASK_BLOCK_DEV`, default `vda`).
fn block_dev() -> String {
    std::env::var("FERROCASK_BLOCK_DEV").unwrap_or_else(|_| "vda".into())
}

/// Bytes written to the block device so far, by everyone (sectors written, field 7 of
/// /sys/block/DEV/stat, times 512): what the device really wrote, but whatever else runs on the
/// machine adds to it.
fn device_bytes() -> u64 {
    let stat = std::fs::read_to_string(format!("/sys/block/{}/stat", block_dev())).unwrap_or_default();
    stat.split_whitespace().nth(6).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 512
}

/// Writes every dirty page of the machine back, so the device counters include what this run
/// left in the page cache.
fn sync_all() {
    let _ = std::process::Command::new("sync").status();
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64
}

struct Sample {
    t: f64,
    disk: u64,
    compacting: bool,
    /// What the store's counters said then: dead bytes in its segments, files pooled for reuse,
    /// and the output bytes of compaction runs so far (to see what the disk above live was).
    dead: u64,
    pooled: usize,
    segments: usize,
    /// Each segment then: (active, compacted, data bytes, dead bytes), oldest first.
    details: Vec<(bool, bool, u64, u64)>,
}

pub fn run(skewed: bool, live_gb: f64, overwrite_gb: f64, recycle: bool) {
    let keys = (live_gb * 1e9 / RECORD_BYTES as f64) as u64;
    let live = keys * RECORD_BYTES;
    let hot = keys / 20;
    let root = tempfile::tempdir_in(".").unwrap();
    let dir = root.path().join("store");
    let store = Store::open_with(&dir, Options { recycle_segments: recycle, ..Options::default() }).unwrap();
    let workload = if skewed { "skewed (90% of overwrites to 5% of keys)" } else { "uniform" };
    println!("recycling of segment files {}", if recycle { "on" } else { "off" });
    println!("steady-state compaction, {workload}: {keys} keys of {VALUE_BYTES} B, {:.2} GB live", live as f64 / 1e9);
    let t = Instant::now();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(key(i), value(i, 0));
        }
        store.write(batch).unwrap();
    }
    println!("loaded in {:.1} s, disk {:.2} GB", t.elapsed().as_secs_f64(), dir_bytes(&dir) as f64 / 1e9);

    let puts_target = (overwrite_gb * 1e9 / VALUE_BYTES as f64) as u64;
    let puts_done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let compacting = AtomicBool::new(false);
    let samples = Mutex::new(Vec::<Sample>::new());
    // Latencies in microseconds, split by whether a compaction was running when the put started.
    let lat_quiet = Mutex::new(Vec::<u32>::new());
    let lat_busy = Mutex::new(Vec::<u32>::new());
    sync_all();
    let wchar_before = wchar();
    let dirtied_before = dirtied_bytes();
    let device_before = device_bytes();
    let stats_before = store.stats();
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let st = store.stats();
                let mut running = false;
                running |= st.compacting; // selective
                compacting.store(running, Ordering::Relaxed);
                let disk = dir_bytes(&dir);
                let t = started.elapsed().as_secs_f64();
                let (dead, pooled, segments) = (st.dead_bytes, st.pooled_segments, st.segments);
                let details =
                    st.segment_details.iter().map(|d| (d.active, d.compacted, d.data_bytes, d.dead_bytes)).collect();
                samples.lock().unwrap().push(Sample { t, disk, compacting: running, dead, pooled, segments, details });
                std::thread::sleep(SAMPLE_EVERY); // the sampling period, not a synchronisation
            }
        });
        for w in 0..WRITERS {
            let (store, stop, puts_done, compacting, lat_quiet, lat_busy) =
                (&store, &stop, &puts_done, &compacting, &lat_quiet, &lat_busy);
            s.spawn(move || {
                // Each writer's own deterministic key sequence.
                let mut rng = Rng::new(0x1234_5678 ^ w);
                let (mut quiet, mut busy) = (Vec::new(), Vec::new());
                let mut round = 1;
                loop {
                    let done = puts_done.fetch_add(1, Ordering::Relaxed);
                    if done >= puts_target {
                        break;
                    }
                    let r = rng.next();
                    let i = if skewed && !r.is_multiple_of(10) { (r >> 8) % hot } else { (r >> 8) % keys };
                    let was_busy = compacting.load(Ordering::Relaxed);
                    let t = Instant::now();
                    store.put(key(i), value(i, round)).unwrap();
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    if was_busy {
                        busy.push(us)
                    } else {
                        quiet.push(us)
                    }
                    round += 1;
                }
                lat_quiet.lock().unwrap().extend(quiet);
                lat_busy.lock().unwrap().extend(busy);
                if puts_done.load(Ordering::Relaxed) >= puts_target {
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let wchar_run = wchar() - wchar_before;
    let stats = store.stats();
    let samples = samples.into_inner().unwrap();
    let end_disk = dir_bytes(&dir);
    drop(store);
    sync_all();
    let dirtied_run = dirtied_bytes() - dirtied_before;
    let device_run = device_bytes() - device_before;

    let user_value_bytes = puts_target * RECORD_BYTES;
    let max_disk = samples.iter().map(|s| s.disk).max().unwrap_or(0).max(end_disk);
    // Extra disk of a compaction: the most the disk grew above where it was when the run began.
    let mut peak_extra = 0u64;
    let mut run_start: Option<u64> = None;
    for s in &samples {
        match (s.compacting, run_start) {
            (true, None) => run_start = Some(s.disk),
            (true, Some(at)) => peak_extra = peak_extra.max(s.disk.saturating_sub(at)),
            (false, _) => run_start = None,
        }
    }
    let mut quiet = lat_quiet.into_inner().unwrap();
    let mut busy = lat_busy.into_inner().unwrap();
    quiet.sort_unstable();
    busy.sort_unstable();
    let busy_time = samples.iter().filter(|s| s.compacting).count() as f64 * SAMPLE_EVERY.as_secs_f64();
    let quiet_time = (elapsed - busy_time).max(1e-9);
    println!("t_s,disk_over_live,compacting");
    for s in &samples {
        println!("{:.2},{:.3},{}", s.t, s.disk as f64 / live as f64, u8::from(s.compacting));
    }
    println!();
    println!("| measure ({workload}) | value |");
    println!("|---|---|");
    println!("| overwrites | {puts_target} puts in {elapsed:.1} s, {WRITERS} writer threads |");
    println!("| disk / live, max | {:.3}x |", max_disk as f64 / live as f64);
    println!("| disk / live, end | {:.3}x |", end_disk as f64 / live as f64);
    if let Some(peak) = samples.iter().max_by_key(|s| s.disk) {
        println!(
            "| at the peak: dead bytes, segments, pooled files, compacting | {:.1} MB ({:.2}x live), {}, {}, {} |",
            peak.dead as f64 / 1e6,
            peak.dead as f64 / live as f64,
            peak.segments,
            peak.pooled,
            peak.compacting
        );
        let list: Vec<String> = peak
            .details
            .iter()
            .map(|&(active, compacted, data, dead)| {
                let kind = if active {
                    "A"
                } else if compacted {
                    "C"
                } else {
                    "L"
                };
                format!("{kind}{:.0}/{:.0}%", data as f64 / 1e6, 100.0 * dead as f64 / data.max(1) as f64)
            })
            .collect();
        println!("| at the peak, each segment (A active, L log, C compacted: MB / dead) | {} |", list.join(" "));
    }
    println!(
        "| device bytes written / record bytes put (block layer, {}, whole machine) | {:.3} |",
        block_dev(),
        device_run as f64 / user_value_bytes as f64
    );
    println!(
        "| dirtied bytes / record bytes put (/proc/self/io write_bytes - cancelled) | {:.3} |",
        dirtied_run as f64 / user_value_bytes as f64
    );
    println!(
        "| segment files reused, as active segments / as compaction outputs | {} / {} |",
        stats.recycled_segments, stats.recycled_compaction_outputs
    );
    // Each sync writes at least the log's last, partly filled 4 KiB page again, however few
    // bytes the group added: with small groups that, not the zeros, dominates the device bytes.
    let syncs = stats.syncs - stats_before.syncs;
    println!(
        "| log syncs, puts per sync, one 4 KiB page per sync / record bytes put | {syncs}, {:.1}, {:.3} |",
        puts_target as f64 / syncs.max(1) as f64,
        (syncs * 4096) as f64 / user_value_bytes as f64
    );
    // The log zero-fills ahead of itself (`preallocate_bytes`): one write(2) of zeros per byte
    // it later writes, which wchar counts too.
    println!(
        "| write amplification (wchar / record bytes put, minus the log's zero-fill) | {:.3} |",
        wchar_run as f64 / user_value_bytes as f64 - 1.0
    );
    let log = stats.log_bytes_written - stats_before.log_bytes_written; // selective
    let compacted = stats.compaction_bytes_written - stats_before.compaction_bytes_written; // selective
    println!("| write amplification (store counters) | {:.3} |", (log + compacted) as f64 / log as f64); // selective
    println!("| compaction runs | {} |", stats.compactions - stats_before.compactions);
    println!("| peak extra disk during a compaction (sampled) | {:.1} MB |", peak_extra as f64 / 1e6);
    println!("| peak output of one run (store counter) | {:.1} MB |", stats.compaction_peak_output_bytes as f64 / 1e6); // selective
    println!(
        "| durable puts/s, compaction running | {:.0} ({:.0}% of the time) |",
        busy.len() as f64 / busy_time.max(1e-9),
        100.0 * busy_time / elapsed
    );
    println!("| durable puts/s, no compaction | {:.0} |", quiet.len() as f64 / quiet_time);
    println!(
        "| put p50 / p99, compaction running | {:.0} / {:.0} us |",
        percentile(&busy, 0.5),
        percentile(&busy, 0.99)
    );
    println!("| put p50 / p99, no compaction | {:.0} / {:.0} us |", percentile(&quiet, 0.5), percentile(&quiet, 0.99));
}
