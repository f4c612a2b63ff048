//! The orphan sweeper: a background task of a single-node server that walks the collections'
//! member records in bounded transactions ([`collection::sweep_step`]) and deletes the orphans a
//! DEL, an overwrite or an expiry of a large collection left (see DESIGN.md, "Collections").
//!
//! A step costs O(log n + records looked at) on a store opened with the collections' ordered
//! prefixes (`ferrocask serve` declares them); on one opened without, `Read::range` falls back
//! to listing every key, so the sweeper runs only where they are declared
//! (`Store::count_prefix` answers). A cluster member does not run it yet; since orphans are
//! invisible, each replica may later sweep its own store.

use std::sync::Weak;
use std::time::Duration;

use ferrocask::Store;

use crate::collection;
use crate::db::TxnView;

/// Whether the sweeper should run on `store`: its member prefixes are ordered there.
pub(crate) fn fits(store: &Store) -> bool {
    collection::SWEPT_PREFIXES.iter().all(|prefix| store.count_prefix(prefix).is_ok())
}

/// Member records one step looks at: one transaction's work, a few hundred KB of tombstones at
/// most, so a step never holds up other writers for long.
pub(crate) const STEP_RECORDS_MAX: usize = 1024;

/// The pause after a whole pass (and after a failed step).
pub(crate) const PASS_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps until the store is gone (the server's `Arc` dropped): pass after pass, one bounded
/// transaction per step, yielding between steps.
pub(crate) async fn run(store: Weak<Store>, value_bytes_max: usize) {
    let mut after: Option<Vec<u8>> = None;
    let mut prefixes = collection::SWEPT_PREFIXES.iter().cycle();
    let mut prefix = *prefixes.next().expect("a prefix");
    loop {
        let Some(strong) = store.upgrade() else { return };
        let from = after.take();
        let step = strong.transaction_async(move |txn| {
            collection::sweep_step(&mut TxnView::new(txn, value_bytes_max), prefix, from.as_deref(), STEP_RECORDS_MAX)
        });
        let step = step.await;
        drop(strong);
        match step {
            Ok(Ok(step)) if step.next.is_some() => {
                after = step.next;
                tokio::task::yield_now().await;
            }
            // This prefix's pass is done (or a step failed): the next prefix, after a pause.
            _ => {
                prefix = *prefixes.next().expect("a cycle");
                tokio::time::sleep(PASS_INTERVAL).await;
            }
        }
    }
}
