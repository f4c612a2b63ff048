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
//!
//! # Typed access
//!
//! With the `serde` feature (on by default), [`TypedStore`] stores any `serde` type, encoded
//! with bincode 2. A stored value that does not decode is [`Error::Codec`], never a panic.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # #[cfg(feature = "serde")] {
//! use ferrocask::TypedStore;
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! enum Shape { Circle { r: f64 }, Square(f64) }
//!
//! let shapes: TypedStore<String, Shape> = TypedStore::open(dir.path())?;
//! shapes.put(&"wheel".to_string(), &Shape::Circle { r: 0.3 })?;
//! assert_eq!(shapes.get(&"wheel".to_string())?, Some(Shape::Circle { r: 0.3 }));
//! for entry in shapes.iter() {
//!     let (name, shape) = entry?;
//!     println!("{name}: {shape:?}");
//! }
//! # }
//! # Ok::<(), ferrocask::Error>(())
//! ```
//!
//! # Iteration
//!
//! [`Store::iter`], [`Store::keys`] and [`Store::scan_prefix`] walk the index one stripe at a
//! time, in no particular order, without blocking writers. Every key that is live when the
//! iteration starts and is not deleted meanwhile is yielded exactly once; keys written meanwhile
//! may or may not be.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let store = ferrocask::Store::open(dir.path())?;
//! for (k, v) in [("user:1", "ada"), ("user:2", "grace"), ("order:9", "tea")] {
//!     store.put(k, v)?;
//! }
//! let mut users: Vec<Vec<u8>> = store.scan_prefix("user:").map(|(k, _)| k).collect();
//! users.sort();
//! assert_eq!(users, [b"user:1".to_vec(), b"user:2".to_vec()]);
//! assert_eq!(store.keys().count(), 3);
//! # Ok::<(), ferrocask::Error>(())
//! ```
//!
//! # Ordered prefixes
//!
//! The index is a hash index: iteration has no order. Keys under prefixes declared with
//! [`Options::ordered_prefix`] are also kept in order in RAM, for [`Store::range_keys`] (ordered
//! range reads in O(log n + m), on the store and in a [`Txn`]) and [`Store::count_prefix`] (O(1)).
//! See the example on [`Store::range_keys`].
//!
//! # Expiry
//!
//! [`Store::put_with_ttl`] stores the expiry in the record: an expired key reads as absent
//! everywhere, stays expired across reopen, and is dropped by compaction. Time comes from
//! [`Options::clock`]; tests use a [`ManualClock`].
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use std::{sync::Arc, time::Duration};
//! use ferrocask::{ManualClock, Options, Store};
//! let clock = Arc::new(ManualClock::new(1_700_000_000_000));
//! let store = Store::open_with(dir.path(), Options { clock: clock.clone(), ..Options::default() })?;
//! store.put_with_ttl("otp", "123456", Duration::from_secs(30))?;
//! assert_eq!(store.len(), 1);
//! clock.advance_ms(30_000);
//! assert_eq!(store.get("otp")?, None);
//! assert_eq!(store.len(), 0);
//! assert_eq!(store.compact()?.records_dropped, 1);
//! # Ok::<(), ferrocask::Error>(())
//! ```
//!
//! # Durability modes
//!
//! [`SyncMode::Always`] (the default) makes every write durable before it returns.
//! [`SyncMode::Every`] returns once the operating system has the write and syncs in the
//! background; a power loss can then lose the writes after the last completed sync (a suffix:
//! batches stay all or nothing). [`Store::sync`] forces a sync.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use std::time::Duration;
//! use ferrocask::{Options, Store, SyncMode};
//! let options = Options { sync: SyncMode::Every(Duration::from_millis(200)), ..Options::default() };
//! let store = Store::open_with(dir.path(), options)?;
//! for i in 0..1000u32 {
//!     store.put(i.to_be_bytes(), b"fast")?; // no fsync per write
//! }
//! store.sync()?; // all 1000 are durable from here on
//! # Ok::<(), ferrocask::Error>(())
//! ```
//!
//! # Backup
//!
//! [`Store::backup_to`] copies a live store, as it was at one moment, into a new directory while
//! writers keep going. The copy is an ordinary store.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ferrocask::Store;
//! let store = Store::open(dir.path().join("live"))?;
//! store.put("config", "v1")?;
//! let report = store.backup_to(dir.path().join("backup-1"))?;
//! println!("copied {} segments, {} bytes", report.segments, report.bytes);
//! store.put("config", "v2")?;
//! let restored = Store::open(dir.path().join("backup-1"))?;
//! assert_eq!(restored.get("config")?.as_deref(), Some(&b"v1"[..]));
//! # Ok::<(), ferrocask::Error>(())
//! ```
#![deny(missing_docs)]

mod clock;
mod compaction;
mod engine;
mod error;
#[doc(hidden)]
pub mod format;
mod future;
mod index;
pub mod inspect;
mod io;
mod iter;
mod keyspace;
mod log;
mod options;
mod range;
mod rmw;
mod stats;
mod store;
#[cfg(feature = "serde")]
mod typed;
mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compaction::CompactionReport;
pub use engine::backup::BackupReport;
pub use engine::recovery::{DroppedRange, RecoveryReport};
pub use error::{Error, Result};
pub use future::WriteFuture;
pub use index::ScanPage;
pub use iter::{Iter, Keys};
pub use keyspace::{Keyspace, KeyspaceId, KeyspaceIter, KeyspaceKind, Range};
pub use log::{Expiry, KeyMeta, Savepoint, Txn};
pub use options::{Options, SyncMode};
pub use range::RangeBuf;
pub use rmw::{Cas, Update, Updated};
pub use stats::{SegmentStats, Stats};
pub use store::Store;
#[cfg(feature = "serde")]
pub use typed::{TypedIter, TypedStore};
pub use value::{Batch, Condition, Value};

/// Hooks for tests, fuzzers and tools; not a stable API.
///
/// The file-system trait, the real file system and the seeded PRNG are always here (the CLI's
/// benchmark writes through `RealFs` and picks keys with `Rng`); the simulator only with the
/// `testing` feature or in this crate's unit tests, so a release build does not compile it.
#[doc(hidden)]
pub mod testing {
    pub use crate::index::Footprint;
    pub use crate::io::rng::Rng;
    #[cfg(any(test, feature = "testing"))]
    pub use crate::io::sim::*;
    pub use crate::io::{LockGuard, Mapping, OpenMode, RealFs, Vfs, VfsFile};
}
