//! Short random range scans through the public API (`Store::range_into`), as `benches/peers
//! --ranges` takes them (17-byte keys under the ordered prefix `r`, 100-byte values, scans of 100
//! keys from random starts): for comparing two builds by instruction counts (callgrind, counting
//! only `scans`) and by interleaved wall time (BENCHMARKS.md, "Short range scans"). The store is
//! written on the first run and reused after.
//!
//! ```text
//! cargo run --release --example range_scans -- DIR KEYS SCANS_PER_SLICE SLICES
//! valgrind --tool=callgrind --toggle-collect='*range_scans::scans*' target/release/examples/range_scans DIR 200000 10000 1
//! ```

use std::hint::black_box;
use std::ops::Bound::{Included, Unbounded};
use std::path::Path;
use std::time::Instant;

use ferrocask::{Batch, Options, RangeBuf, Store};

/// Keys per scan.
const SCAN_KEYS: usize = 100;
/// Keys written per batch when the store is first filled.
const LOAD_BATCH_KEYS: u64 = 10_000;

/// Key number `i` as the peers benchmark makes it: the prefix `r`, 8 mixed bytes (so keys
/// sort apart from their numbers), then the number.
fn key(i: u64) -> [u8; 17] {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut k = [0u8; 17];
    k[0] = b'r';
    k[1..9].copy_from_slice(&z.to_be_bytes());
    k[9..].copy_from_slice(&i.to_be_bytes());
    k
}

/// `count` scans of `SCAN_KEYS` from the keys of `starts` (cycled from `from`): the keys read.
#[inline(never)]
fn scans(store: &Store, starts: &[[u8; 17]], from: usize, count: usize, buf: &mut RangeBuf) -> usize {
    let mut keys = 0;
    for i in 0..count {
        let start = &starts[(from + i) % starts.len()];
        store.range_into(b"r", Included(start), Unbounded, false, SCAN_KEYS, buf).expect("range_into");
        keys += buf.iter().map(|(_, v)| black_box(v).len().min(1)).sum::<usize>();
    }
    keys
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, keys, per_slice, slices] = &args[..] else {
        eprintln!("usage: range_scans DIR KEYS SCANS_PER_SLICE SLICES");
        std::process::exit(2);
    };
    let (keys, per_slice, slices): (u64, usize, usize) =
        (keys.parse().expect("KEYS"), per_slice.parse().expect("SCANS_PER_SLICE"), slices.parse().expect("SLICES"));
    let fresh = !Path::new(dir).join("MANIFEST").exists();
    let store = Store::open_with(dir, Options::default().ordered_prefix("r")).expect("open");
    if fresh {
        let value = [7u8; 100];
        for first in (0..keys).step_by(LOAD_BATCH_KEYS as usize) {
            let mut batch = Batch::new();
            for i in first..(first + LOAD_BATCH_KEYS).min(keys) {
                batch.put(key(i), value);
            }
            store.write(batch).expect("load");
        }
    }
    // Random starts: keys of random numbers, whose mixed bytes put them anywhere in the order.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let starts: Vec<[u8; 17]> = (0..per_slice)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            key(x % keys)
        })
        .collect();
    let mut buf = RangeBuf::new();
    for slice in 0..slices {
        let began = Instant::now();
        let read = scans(&store, &starts, slice * per_slice, per_slice, &mut buf);
        let secs = began.elapsed().as_secs_f64();
        println!("slice {slice}: {read} keys, {:.0} keys/s", read as f64 / secs);
    }
}
