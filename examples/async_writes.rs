//! 1,000 tokio tasks writing to one store at once: each `put_async` resolves when its write is
//! durable, no thread blocks meanwhile, and the tasks share a handful of fsyncs (group commit).
//! Then the same tasks increment one hot counter, atomically, still sharing fsyncs.
//!
//! `cargo run --example async_writes`

use std::sync::Arc;
use std::time::Instant;

use ferrocask::{Store, Update};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path())?);

    let started = Instant::now();
    let tasks: Vec<_> = (0..1000u32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store.put_async(format!("user:{i}"), format!("profile of {i}")).await?;
                store
                    .update_async("visits", |v| {
                        let n: u64 = v.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).unwrap_or(0);
                        Update::Set((n + 1).to_string().into_bytes())
                    })
                    .await?;
                Ok::<_, ferrocask::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let stats = store.stats();
    println!(
        "2,000 durable writes from 1,000 tasks in {:.1?}: {} syncs, {:.1} records per sync; visits = {}",
        started.elapsed(),
        stats.syncs,
        stats.records_per_sync,
        String::from_utf8_lossy(&store.get("visits")?.map(|v| v.into_vec()).unwrap_or_default())
    );
    Ok(())
}
