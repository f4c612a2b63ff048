//! A global allocator that counts the bytes the process has allocated (the bytes asked for,
//! before the system allocator's own rounding) and the most it held since a mark: what the
//! footprint tests measure RAM with. Each such test is one test in its own binary, so that no
//! other test allocates meanwhile, and includes this file by path (not through `common`, whose
//! other modules it does not need):
//!
//! ```ignore
//! #[path = "common/counting_alloc.rs"]
//! mod counting_alloc;
//! #[global_allocator]
//! static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;
//! ```

// Each test binary uses part of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes currently allocated, and the peak.
pub struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The most `LIVE_BYTES` has been since it was last reset to the current count.
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn count_up(bytes: usize) {
    let now = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counters only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_up(layout.size());
        // SAFETY: forwarded with the caller's layout, as the caller promised it for `alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_up(new_size);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller vouches for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes allocated now.
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Starts a new peak from what is allocated now; returns that.
pub fn reset_peak() -> usize {
    let now = live_bytes();
    PEAK_BYTES.store(now, Ordering::Relaxed);
    now
}

/// The most allocated since [`reset_peak`] returned `start`, above `start`.
pub fn peak_since(start: usize) -> usize {
    PEAK_BYTES.load(Ordering::Relaxed) - start
}
