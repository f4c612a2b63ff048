//! Keyspaces beside the default keyspace, in one store and one run, interleaved in short slices
//! so that every kind sees the same machine and disk spells: random gets on the default
//! keyspace, a hash keyspace and an ordered keyspace (the same keys in each); durable puts on
//! each; then, on the ordered keyspace, a full ordered iteration and random range scans of 100
//! keys. Prints medians over the slices with their spread, and the ratios to the default
//! keyspace (issue 24's targets: ordered gets >= 0.5x, hash keyspaces as fast as the default).
//!
//! ```text
//! cargo bench --bench keyspaces                 # 200,000 keys
//! cargo bench --bench keyspaces -- --keys 1000000
//! ```

use std::hint::black_box;
use std::time::Instant;

use ferrocask::testing::Rng;
use ferrocask::{Batch, Options, Store, SyncMode};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
/// Gets per slice and kind.
const GETS_PER_SLICE: usize = 20_000;
/// Slices of gets (each kind once per slice, in rotating order).
const GET_SLICES: usize = 15;
/// Durable puts per slice and kind, and slices.
const PUTS_PER_SLICE: usize = 50;
const PUT_SLICES: usize = 7;
/// Range scans, keys per scan.
const SCANS: usize = 10_000;
const SCAN_KEYS: usize = 100;

fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let mut keys: u64 = 200_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--keys" => keys = args.next().and_then(|n| n.parse().ok()).expect("--keys N"),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_with(dir.path(), Options::default()).unwrap();
    let hash = store.keyspace("hash").unwrap();
    let ordered = store.ordered_keyspace("ordered").unwrap();
    let value = [7u8; VALUE_BYTES];
    let loading = Instant::now();
    store.set_sync_mode(SyncMode::Every(std::time::Duration::from_secs(3600))).unwrap();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(2000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(key(i), value).put_in(&hash, key(i), value).put_in(&ordered, key(i), value);
        }
        store.write(batch).unwrap();
    }
    store.set_sync_mode(SyncMode::Always).unwrap();
    eprintln!("loaded {keys} keys in each of 3 keyspaces in {:.1?}", loading.elapsed());

    // Gets: ns per get, per slice and kind.
    let mut rng = Rng::new(24);
    let mut ns: [Vec<f64>; 3] = Default::default();
    for slice in 0..GET_SLICES {
        let picks: Vec<[u8; KEY_BYTES]> = (0..GETS_PER_SLICE).map(|_| key(rng.below(keys))).collect();
        for turn in 0..3 {
            let kind = (slice + turn) % 3;
            let started = Instant::now();
            for k in &picks {
                let v = match kind {
                    0 => store.get(k),
                    1 => hash.get(k),
                    _ => ordered.get(k),
                };
                black_box(v.unwrap().expect("present"));
            }
            ns[kind].push(started.elapsed().as_nanos() as f64 / GETS_PER_SLICE as f64);
        }
    }
    let names = ["default", "hash keyspace", "ordered keyspace"];
    let base = median(ns[0].clone()).1;
    println!("gets, ns per get (min / median / max over {GET_SLICES} slices of {GETS_PER_SLICE}):");
    for (name, xs) in names.iter().zip(&ns) {
        let (lo, mid, hi) = median(xs.clone());
        println!("  {name:17} {lo:7.0} {mid:7.0} {hi:7.0}   speed vs default {:.2}x", base / mid);
    }

    // Durable puts: us per put.
    let mut us: [Vec<f64>; 3] = Default::default();
    for slice in 0..PUT_SLICES {
        for turn in 0..3 {
            let kind = (slice + turn) % 3;
            let started = Instant::now();
            for _ in 0..PUTS_PER_SLICE {
                let k = key(rng.below(keys));
                match kind {
                    0 => store.put(k, value),
                    1 => hash.put(k, value),
                    _ => ordered.put(k, value),
                }
                .unwrap();
            }
            us[kind].push(started.elapsed().as_micros() as f64 / PUTS_PER_SLICE as f64);
        }
    }
    let base = median(us[0].clone()).1;
    println!("durable puts, us per put (min / median / max over {PUT_SLICES} slices of {PUTS_PER_SLICE}):");
    for (name, xs) in names.iter().zip(&us) {
        let (lo, mid, hi) = median(xs.clone());
        println!("  {name:17} {lo:7.0} {mid:7.0} {hi:7.0}   speed vs default {:.2}x", base / mid);
    }

    // Ordered reads.
    let started = Instant::now();
    let n = ordered.iter().count();
    let secs = started.elapsed().as_secs_f64();
    println!("ordered iteration of {n} keys: {:.0} keys/s", n as f64 / secs);
    let started = Instant::now();
    let mut got = 0;
    for _ in 0..SCANS {
        let from = key(rng.below(keys));
        got += ordered.range_page(from.as_slice().., false, SCAN_KEYS).unwrap().len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{SCANS} range scans from a random key, first {SCAN_KEYS} taken: {:.0} keys/s", got as f64 / secs);
    let index = store.stats().index_bytes;
    println!("index bytes: {index} ({:.1} per key over the 3 keyspaces)", index as f64 / (3 * keys) as f64);
}
