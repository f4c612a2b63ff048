fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let n: u64 = std::env::args().nth(2).unwrap().parse().unwrap();
    let store =
        ferrocask::Store::open_with(&dir, ferrocask::Options { auto_compact: false, ..Default::default() }).unwrap();
    for c in 0..n / 1000 {
        let mut b = ferrocask::Batch::new();
        for i in c * 1000..(c + 1) * 1000 {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&i.to_be_bytes());
            b.put(k, [7u8; 100]);
        }
        store.write(b).unwrap();
    }
    store.compact().unwrap();
}
