//! `--ranges`: ordered reads against the peers (issue 24's benchmark). Every store is loaded
//! with the same `--keys` keys (17 bytes: [`RANGE_PREFIX`] then the 16-byte key of the other
//! workloads, 100-byte values), in ferrocask under a prefix declared with
//! `Options::ordered_prefix`. Then, per run, stores in rotating order:
//!
//! * full ordered iteration: every key and value in key order, once per store (keys/s);
//! * 10,000 scans of 100 keys from random start keys, the same starts for every store, in 10
//!   slices of 1,000 taking turns (keys/s: keys read over the time spent);
//! * random gets of loaded keys, 1 thread, interleaved as the main gets are (ops/s);
//! * ferrocask alone: gets and durable puts on keys under the ordered prefix beside keys of the
//!   same store outside it (hash index only), interleaved.
//!
//! Prints a markdown table of medians over runs, each with its ratio to the best peer.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::stores::{Engine, Ferro, FerroPrefixed, Kv, RANGE_PREFIX};
use crate::{fresh_dir, interleaved, key, random_value, Config, VALUE_BYTES};

/// Scans per run and keys per scan.
const SCANS: usize = 10_000;
const SCAN_KEYS: usize = 100;
/// The scans are taken in this many turns per store, so that a noisy spell hits all.
const SCAN_SLICES: usize = 10;

/// The prefix of the hash-only keys in the side-by-side ferrocask store.
const HASH_PREFIX: &[u8] = b"h";

fn rkey(i: u64) -> Vec<u8> {
    [RANGE_PREFIX, &key(i)[..]].concat()
}

/// workload -> store -> one figure per run.
type Figures = BTreeMap<&'static str, BTreeMap<String, Vec<f64>>>;

fn note(figures: &mut Figures, workload: &'static str, store: &str, value: f64) {
    eprintln!("  {store:<22} {workload}: {value:>12.0}");
    figures.entry(workload).or_default().entry(store.to_string()).or_default().push(value);
}

fn open(engine: Engine, dir: &std::path::Path) -> Box<dyn Kv> {
    match engine {
        Engine::Ferrocask => Box::new(Ferro::open_ordered(dir)),
        other => other.open(dir),
    }
}

pub fn run(cfg: &Config) {
    let peers = [Engine::Ferrocask, Engine::Redb, Engine::Fjall, Engine::Sqlite];
    let engines: Vec<Engine> = cfg.engines.iter().copied().filter(|e| peers.contains(e)).collect();
    let n = cfg.keys;
    let mut sorted: Vec<Vec<u8>> = (0..n).map(rkey).collect();
    sorted.sort_unstable();
    let mut figures = Figures::new();
    let started = Instant::now();
    for run in 0..cfg.runs {
        eprintln!("ranges run {}/{} ({:.0} s so far)", run + 1, cfg.runs, started.elapsed().as_secs_f64());
        let mut order = engines.clone();
        let shift = run % order.len().max(1);
        order.rotate_left(shift);
        let dirs: Vec<_> = order.iter().map(|&e| fresh_dir(cfg, e, "ranges")).collect();
        let mut stores: Vec<Box<dyn Kv>> = Vec::new();
        for (&e, dir) in order.iter().zip(&dirs) {
            let kv = open(e, dir);
            let mut rng = fastrand::Rng::with_seed(7);
            let t = Instant::now();
            for chunk in sorted.chunks(cfg.batch) {
                let items: Vec<(Vec<u8>, Vec<u8>)> =
                    chunk.iter().map(|k| (k.clone(), random_value(&mut rng, VALUE_BYTES))).collect();
                kv.load_pairs(&items);
            }
            note(&mut figures, "bulk load (keys/s)", e.name(), n as f64 / t.elapsed().as_secs_f64());
            stores.push(kv);
        }
        for (&e, kv) in order.iter().zip(&stores) {
            let t = Instant::now();
            let (keys, bytes) = kv.scan_all();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!((keys, bytes), (n as usize, n as usize * VALUE_BYTES), "{}: every entry iterated", e.name());
            note(&mut figures, "ordered iteration of every key (keys/s)", e.name(), keys as f64 / secs);
        }
        let mut rng = fastrand::Rng::with_seed(0x5CA9 + run as u64);
        let starts: Vec<Vec<u8>> = (0..SCANS).map(|_| rkey(rng.u64(..n))).collect();
        let mut spent = vec![(0usize, 0.0f64); stores.len()];
        for slice in starts.chunks(SCANS.div_ceil(SCAN_SLICES)) {
            for (i, kv) in stores.iter().enumerate() {
                let t = Instant::now();
                for start in slice {
                    spent[i].0 += kv.scan(start, SCAN_KEYS).0;
                }
                spent[i].1 += t.elapsed().as_secs_f64();
            }
        }
        let first = spent[0].0;
        for (&e, (keys, secs)) in order.iter().zip(&spent) {
            assert_eq!(*keys, first, "{}: every store reads the same keys", e.name());
            note(&mut figures, "10,000 random scans of 100 keys (keys/s)", e.name(), *keys as f64 / secs);
        }
        let kvs: Vec<(Engine, &dyn Kv)> = order.iter().copied().zip(stores.iter().map(|b| &**b)).collect();
        let samples = interleaved(cfg, &kvs, 1, |kv, rng, _| {
            assert_eq!(kv.get(&rkey(rng.u64(..n))), Some(VALUE_BYTES), "get of a loaded key");
        });
        for (&e, s) in order.iter().zip(samples) {
            note(&mut figures, "random get, 1 thr (ops/s)", e.name(), s.value);
        }
        drop(kvs);
        drop(stores);
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        if engines.contains(&Engine::Ferrocask) {
            side_by_side(cfg, &mut figures);
        }
    }
    let md = markdown(cfg, &figures, started.elapsed().as_secs_f64());
    println!("{md}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results-ranges.md");
    std::fs::write(&out, &md).expect("write markdown");
    eprintln!("wrote {}", out.display());
}

/// One ferrocask store with `--keys` keys under the ordered prefix and as many outside it:
/// gets and durable puts of each kind, interleaved.
fn side_by_side(cfg: &Config, figures: &mut Figures) {
    let dir = fresh_dir(cfg, Engine::Ferrocask, "ranges-side");
    let store = Ferro::open_ordered(&dir);
    let ordered = FerroPrefixed { store: &store, prefix: RANGE_PREFIX };
    let hashed = FerroPrefixed { store: &store, prefix: HASH_PREFIX };
    let n = cfg.keys;
    let mut sorted: Vec<[u8; 16]> = (0..n).map(key).collect();
    sorted.sort_unstable();
    let mut rng = fastrand::Rng::with_seed(9);
    for chunk in sorted.chunks(cfg.batch) {
        let items: Vec<([u8; 16], Vec<u8>)> = chunk.iter().map(|k| (*k, random_value(&mut rng, VALUE_BYTES))).collect();
        ordered.load(&items);
        hashed.load(&items);
    }
    let kvs: Vec<(Engine, &dyn Kv)> = vec![(Engine::Ferrocask, &ordered), (Engine::Ferrocask, &hashed)];
    let names = ["ferrocask ordered prefix", "ferrocask hash only"];
    let gets = interleaved(cfg, &kvs, 1, |kv, rng, _| {
        assert_eq!(kv.get(&key(rng.u64(..n))), Some(VALUE_BYTES), "get of a loaded key");
    });
    for (name, s) in names.iter().zip(gets) {
        note(figures, "random get, 1 thr (ops/s)", name, s.value);
    }
    let puts = interleaved(cfg, &kvs, 1, |kv, rng, buf| {
        buf.resize(VALUE_BYTES, 0);
        rng.fill(buf);
        kv.put(&key(rng.u64(..)), buf);
    });
    for (name, s) in names.iter().zip(puts) {
        note(figures, "durable put, 1 thr (ops/s)", name, s.value);
    }
    drop(kvs);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn markdown(cfg: &Config, figures: &Figures, secs: f64) -> String {
    let mut md = format!(
        "Range workloads (`peers --ranges`): {} keys of 17 bytes, {VALUE_BYTES}-byte values, {} runs, medians \
         ({secs:.0} s in all). Ratio: ferrocask's median over the best peer's.\n\n",
        cfg.keys, cfg.runs
    );
    md.push_str("| workload | store | median | min-max | vs best peer |\n|---|---|---:|---:|---:|\n");
    for (workload, stores) in figures {
        let best_peer = stores
            .iter()
            .filter(|(name, _)| !name.starts_with("ferrocask"))
            .map(|(_, v)| median(v))
            .fold(f64::NAN, f64::max);
        for (name, v) in stores {
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let ratio = if name.starts_with("ferrocask") && best_peer.is_finite() {
                format!("{:.2}x", median(v) / best_peer)
            } else {
                String::new()
            };
            md.push_str(&format!("| {workload} | {name} | {:.0} | {lo:.0}-{hi:.0} | {ratio} |\n", median(v)));
        }
    }
    md
}
