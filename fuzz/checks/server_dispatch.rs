//! `server_dispatch`: bytes as one client's stream through the server's request parser and
//! command dispatch (`ferrocask_server::fuzzing::run_bytes`: protocol, every command, MULTI,
//! EXEC, WATCH) on a store on `SimFs`. It must never panic, and what it sends back must be a
//! sequence of whole RESP replies.
//!
//! Not in `TARGETS` (`mod.rs`): the root crate's replay test cannot depend on the server; the
//! server crate's `tests/fuzz_corpus.rs` replays this target's corpus instead.

use std::path::Path;
use std::sync::Arc;

use ferrocask::testing::SimFs;
use ferrocask::{Options, Store};

/// The end of the reply starting at `at`, or `None` if it is not a whole reply.
fn reply_end(out: &[u8], at: usize, depth: usize) -> Option<usize> {
    assert!(depth < 64, "replies nest at most a few levels deep");
    let kind = *out.get(at)?;
    let line = out[at..].windows(2).position(|w| w == b"\r\n")? + at;
    let next = line + 2;
    // Status and error texts may hold any byte but a line break (errors quote client bytes raw,
    // as Redis does); only lengths and counts must be text.
    if matches!(kind, b'+' | b'-') {
        return Some(next);
    }
    let header = std::str::from_utf8(&out[at + 1..line]).ok()?;
    match kind {
        b':' | b'_' | b',' => Some(next),
        b'$' | b'=' => match header.parse::<i64>().ok()? {
            -1 => Some(next),
            n if n >= 0 => {
                let end = next + n as usize;
                (out.get(end..end + 2)? == b"\r\n").then_some(end + 2)
            }
            _ => None,
        },
        b'*' | b'%' | b'~' => {
            let n: i64 = header.parse().ok()?;
            let items = if kind == b'%' { n * 2 } else { n.max(0) };
            (0..items).try_fold(next, |pos, _| reply_end(out, pos, depth + 1))
        }
        _ => None,
    }
}

/// The target's check.
pub fn check(data: &[u8]) {
    let options = Options { segment_bytes: 64 << 10, preallocate_bytes: 0, auto_compact: false, ..Options::default() };
    // The collections' prefixes ordered, as `ferrocask serve` declares them.
    let options = ferrocask_server::ORDERED_PREFIXES.iter().fold(options, |o, prefix| o.ordered_prefix(*prefix));
    let store = Store::open_on(SimFs::new(), Path::new("/fuzz"), options).expect("a fresh store opens");
    let out = ferrocask_server::fuzzing::run_bytes(Arc::new(store), data);
    let mut pos = 0;
    while pos < out.len() {
        pos = reply_end(&out, pos, 0)
            .unwrap_or_else(|| panic!("not a whole reply at {pos}: {:?}", String::from_utf8_lossy(&out)));
    }
}
