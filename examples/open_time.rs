//! Opening a loaded store, again and again: for comparing builds of the open path by wall time
//! (medians of several opens, warm cache) and by instruction counts (callgrind, counting only
//! the open), and for the peak RAM an open takes (`VmHWM` of a process that only opens).
//! BENCHMARKS.md, "Open time (issue 26)".
//!
//! `build DIR KEYS` writes two stores of KEYS keys as `ferrocask bench` does (16-byte keys,
//! 100-byte values, batches of 1,000): `DIR/replay` without hint files and `DIR/hints`
//! compacted, with hint files. `open STORE RUNS [PREFIX]` opens one RUNS times, with `PREFIX`
//! declared an ordered prefix if given (`k` covers every key), and prints each open's time,
//! their median and the process's peak RSS before and after.
//!
//! ```text
//! cargo build --release --example open_time
//! target/release/examples/open_time build /tmp/open 1000000
//! target/release/examples/open_time open /tmp/open/hints 9
//! target/release/examples/open_time open /tmp/open/replay 9 k
//! valgrind --tool=callgrind --toggle-collect='*recovery::recover*' target/release/examples/open_time open /tmp/open/hints 1
//! ```

use std::path::Path;
use std::time::Instant;

use ferrocask::{Batch, Options, Store};

/// Key number `i`, as `ferrocask bench` writes it.
fn key(i: u64) -> [u8; 16] {
    let mut k = *b"k000000000000000";
    let mut n = i;
    for b in k[1..].iter_mut().rev() {
        *b = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
    }
    k
}

fn options() -> Options {
    Options { auto_compact: false, ..Options::default() }
}

fn load(dir: &Path, keys: u64, write_hints: bool) {
    let store = Store::open_with(dir, Options { write_hints, ..options() }).expect("open");
    let mut batch = Batch::new();
    for i in 0..keys {
        let mut value = [b'v'; 100];
        value[..8].copy_from_slice(&i.to_le_bytes());
        batch.put(key(i), value);
        if batch.len() == 1000 || i + 1 == keys {
            store.write(std::mem::take(&mut batch)).expect("write");
        }
    }
    if write_hints {
        store.compact().expect("compact");
    }
}

/// The process's peak and current resident set (`VmHWM`, `VmRSS`, kB), on Linux.
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn open(dir: &Path, runs: usize, prefix: Option<&str>) {
    // No hint files written after an open: a store without them is replayed every time.
    let mut options = Options { write_hints: false, ..options() };
    if let Some(p) = prefix {
        options = options.ordered_prefix(p);
    }
    let (hwm_before, rss_before) = rss_kb();
    let mut ms = Vec::new();
    let mut keys = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let store = Store::open_with(dir, options.clone()).expect("open");
        ms.push(started.elapsed().as_secs_f64() * 1e3);
        keys = store.len();
        let report = store.recovery_report();
        assert_eq!(report.hints_rejected, 0, "{report:?}");
        drop(store);
    }
    let (hwm_after, _) = rss_kb();
    let each: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    println!(
        "{keys} keys, prefix {prefix:?}: median {median:.1} ms ({:.1} ms per 1M keys), runs [{}]; \
         VmHWM {hwm_before} -> {hwm_after} kB (RSS before {rss_before} kB: {:.1} B/key at the peak)",
        median * 1e6 / keys.max(1) as f64,
        each.join(" "),
        (hwm_after.saturating_sub(rss_before) * 1024) as f64 / keys.max(1) as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match &args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["build", dir, keys] => {
            let keys = keys.parse().expect("KEYS");
            load(&Path::new(dir).join("replay"), keys, false);
            load(&Path::new(dir).join("hints"), keys, true);
        }
        ["open", dir, runs] => open(Path::new(dir), runs.parse().expect("RUNS"), None),
        ["open", dir, runs, prefix] => open(Path::new(dir), runs.parse().expect("RUNS"), Some(prefix)),
        _ => panic!("usage: open_time build DIR KEYS | open_time open STORE RUNS [PREFIX]"),
    }
}
