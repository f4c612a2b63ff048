//! Random gets of present keys through the public API, in timed slices: for comparing two builds
//! of the index by instruction counts (callgrind, counting only `gets`) and by interleaved wall
//! time (BENCHMARKS.md, "Index RAM per key"). The store (16-byte keys, 100-byte values, as
//! `ferrocask bench`) is written on the first run and reused after.
//!
//! ```text
//! cargo run --release --example index_gets -- DIR KEYS GETS_PER_SLICE SLICES
//! valgrind --tool=callgrind --toggle-collect='*index_gets::gets*' target/release/examples/index_gets DIR 100000 100000 1
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
    Options { background_thread: false, auto_compact: false, ..Options::default() }
}

fn load(dir: &Path, keys: u64) {
    let store = Store::open_with(dir, options()).expect("open");
    let mut batch = Batch::new();
    for i in 0..keys {
        batch.put(key(i), [b'v'; 100]);
        if batch.len() == 1000 || i + 1 == keys {
            store.write(std::mem::take(&mut batch)).expect("write");
        }
    }
}

/// `n` gets of keys below `keys` chosen by a xorshift from `seed`; the bytes read.
#[inline(never)]
fn gets(store: &Store, keys: u64, n: u64, seed: u64) -> usize {
    let mut x = seed | 1;
    let mut bytes = 0;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes += store.get(key(x % keys)).expect("get").map_or(0, |v| v.len());
    }
    bytes
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, keys, per_slice, slices] = &args[..] else {
        panic!("usage: index_gets DIR KEYS GETS_PER_SLICE SLICES");
    };
    let (dir, keys) = (Path::new(dir), keys.parse().expect("KEYS"));
    let (per_slice, slices): (u64, u64) = (per_slice.parse().expect("GETS_PER_SLICE"), slices.parse().expect("SLICES"));
    if !dir.join("MANIFEST").exists() {
        load(dir, keys);
    }
    let store = Store::open_with(dir, options()).expect("open");
    assert_eq!(store.len() as u64, keys, "the store holds the keys asked for");
    let warm = gets(&store, keys, keys, 7);
    assert!(warm > 0);
    let mut ns: Vec<f64> = (0..slices)
        .map(|slice| {
            let started = Instant::now();
            let bytes = gets(&store, keys, per_slice, slice + 11);
            assert_eq!(bytes as u64, per_slice * 100, "every key is found");
            started.elapsed().as_nanos() as f64 / per_slice as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    println!("{:.1}", ns[ns.len() / 2]);
}
