//! ferrocask: a write-through embedded key-value store.
#![deny(missing_docs)]

mod clock;
mod error;
mod format;
mod io;
mod options;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use options::{Options, SyncMode};
