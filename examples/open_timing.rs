fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let t = std::time::Instant::now();
    let store = ferrocask::Store::open_with(
        &dir,
        ferrocask::Options { auto_compact: false, write_hints: false, ..Default::default() },
    )
    .unwrap();
    eprintln!("open {:?} keys {} {:?}", t.elapsed(), store.len(), store.recovery_report());
    std::mem::forget(store);
}
