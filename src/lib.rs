//! ferrocask: a write-through embedded key-value store.
//!
//! Every write is on stable storage before the call returns, and every read is served from
//! memory: a lock-striped in-RAM hash index points into an append-only, checksummed segment log
//! that is memory-mapped for reads. Concurrent writers share one sync (group commit). See
//! DESIGN.md for the on-disk format and the durability protocol.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ferrocask::{Batch, Store};
//! let store = Store::open(dir.path())?;
//! store.put(b"greeting", b"hello")?;                 // durable when it returns
//! let mut batch = Batch::new();
//! batch.put(b"a", b"1").put(b"b", b"2").delete(b"greeting");
//! store.write(batch)?;                               // all or nothing, even across a crash
//! assert_eq!(store.get(b"a")?.as_deref(), Some(&b"1"[..]));
//! assert_eq!(store.len(), 2);
//! # Ok::<(), ferrocask::Error>(())
//! ```
#![deny(missing_docs)]

mod clock;
mod compaction;
mod error;
#[doc(hidden)]
pub mod format;
mod hints;
mod index;
pub mod inspect;
mod io;
mod iter;
mod log;
mod maintenance;
mod options;
mod recovery;
mod stats;
mod store;
mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compaction::CompactionReport;
pub use error::{Error, Result};
pub use iter::{Iter, Keys};
pub use options::{Options, SyncMode};
pub use recovery::{DroppedRange, RecoveryReport};
pub use stats::Stats;
pub use store::Store;
pub use value::{Batch, Value};

/// Hooks for tests, fuzzers and tools; not a stable API.
#[doc(hidden)]
pub mod testing {
    pub use crate::io::sim::*;
    pub use crate::io::{LockGuard, Mapping, OpenMode, RealFs, Vfs, VfsFile};
}
