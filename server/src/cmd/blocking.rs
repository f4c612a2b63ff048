//! The blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX, with Redis 7.0's
//! replies and errors.
//!
//! Each handler here is the command's non-blocking form: what it answers when a pop is possible
//! now (the non-blocking command's reply, as Redis shapes it for the blocking one), and what it
//! answers inside MULTI, where it never blocks (a nil array; BLMOVE and BRPOPLPUSH a nil). The
//! waiting itself is the session's (`Session::block`), which runs these again, as writes, each
//! time the registry (`blocking.rs`) wakes it; a run after a wake-up is a [`retry`], which skips
//! a key of the other type instead of failing on it, as Redis skips a blocked client there.

use std::time::Duration;

use bytes::Bytes;

use super::float::LongDouble;
use super::lists;
use super::parse::strict_i64;
use super::zsets;
use crate::collection::{open, Kind};
use crate::db::Write;
use crate::reply::Reply;

/// Whether `name` is one of the blocking pops.
pub(crate) fn blocks(name: &str) -> bool {
    matches!(name, "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax")
}

/// A retry's answer when nothing was popped but a key held the other type: the session then
/// wakes the waiter behind it (`Waiter::pass`). No blocking pop answers an integer otherwise.
pub(crate) const SKIPPED: Reply = Reply::Int(0);

/// The command's name, lowercase.
fn name(args: &[Bytes]) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
}

/// Where the timeout argument is.
fn timeout_index(name: &str, args: &[Bytes]) -> usize {
    match name {
        "blmove" => 5,
        "brpoplpush" => 3,
        "blmpop" => 1,
        _ => args.len() - 1,
    }
}

/// The timeout, as Redis's `getTimeoutFromObjectOrReply` reads seconds: a long double, not
/// negative, rounded up to milliseconds; `None` (0) is forever.
pub(crate) fn timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let Some(parsed) = LongDouble::parse(arg) else {
        return Err(Reply::error("ERR timeout is not a float or out of range"));
    };
    // The value itself: `strtold`'s hexadecimal form is the one Rust does not read (refused
    // below, where Redis would read it).
    let seconds = std::str::from_utf8(arg).ok().and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::INFINITY);
    let negative = matches!(parsed, LongDouble::Infinite { negative: true })
        || matches!(parsed, LongDouble::Finite { negative: true, mantissa, .. } if mantissa != 0);
    if negative {
        return Err(Reply::error("ERR timeout is negative"));
    }
    // Redis rounds up to a whole millisecond (`ceill`); a value past `long long` converts to
    // its minimum on x86, which Redis then calls negative.
    let ms = (seconds * 1000.0).ceil();
    if ms.is_nan() || ms >= i64::MAX as f64 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(match ms as u64 {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    })
}

/// The command's timeout, checked first as Redis checks it (after BLMOVE's directions and
/// after all of BLMPOP's other arguments).
pub(crate) fn timeout_of(args: &[Bytes]) -> Result<Option<Duration>, Reply> {
    let name = name(args);
    if name == "blmove" {
        for arg in &args[3..5] {
            if !super::parse::is(arg, "left") && !super::parse::is(arg, "right") {
                return Err(super::parse::syntax());
            }
        }
    }
    if name == "blmpop" {
        lists::check_lmpop_args(&args[1..])?;
    }
    timeout(&args[timeout_index(&name, args)])
}

/// The keys a client blocked in `args` waits on (its sources).
pub(crate) fn source_keys(args: &[Bytes]) -> Vec<Bytes> {
    match name(args).as_str() {
        "blmove" | "brpoplpush" => vec![args[1].clone()],
        "blmpop" => {
            let n = strict_i64(&args[2]).and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
            args.get(3..3 + n).map(<[Bytes]>::to_vec).unwrap_or_default()
        }
        _ => args[1..args.len() - 1].to_vec(),
    }
}

/// Whether a reply of the table's handler means "nothing to pop now": block.
pub(crate) fn is_empty(reply: &Reply) -> bool {
    matches!(reply, Reply::NilArray | Reply::Nil)
}

/// The table's handler for all seven: the pop if possible now, else nil.
pub(crate) fn pop_now(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    tri!(timeout_of(args));
    attempt(ks, args, false)
}

/// A woken client's pop: as [`pop_now`] (whose checks passed already), but a key of the other
/// type is skipped rather than an error; [`SKIPPED`] if nothing was popped because of one.
pub(crate) fn retry(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    attempt(ks, args, true)
}

fn attempt(ks: &mut dyn Write, args: &[Bytes], retry: bool) -> Reply {
    let name = name(args);
    match name.as_str() {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => pop_first(ks, &name, &args[1..args.len() - 1], retry),
        "blmove" | "brpoplpush" => {
            let source_wrong = open(ks, &args[1], Kind::List).is_err();
            if retry && source_wrong {
                return SKIPPED;
            }
            if name == "blmove" {
                lists::lmove(
                    ks,
                    &[Bytes::from_static(b"lmove"), args[1].clone(), args[2].clone(), args[3].clone(), args[4].clone()],
                )
            } else {
                lists::rpoplpush(ks, &[Bytes::from_static(b"rpoplpush"), args[1].clone(), args[2].clone()])
            }
        }
        "blmpop" => blmpop(ks, args, retry),
        other => Reply::error(format!("ERR internal: {other} is not a blocking pop")),
    }
}

/// BLPOP BRPOP BZPOPMIN BZPOPMAX: pops from the first key that holds something.
fn pop_first(ks: &mut dyn Write, name: &str, keys: &[Bytes], retry: bool) -> Reply {
    type Pop = fn(&mut dyn Write, &[Bytes]) -> Reply;
    let (kind, pop, pop_name): (Kind, Pop, &'static [u8]) = match name {
        "blpop" => (Kind::List, lists::lpop, b"lpop"),
        "brpop" => (Kind::List, lists::rpop, b"rpop"),
        "bzpopmin" => (Kind::ZSet, zsets::zpopmin, b"zpopmin"),
        _ => (Kind::ZSet, zsets::zpopmax, b"zpopmax"),
    };
    let mut skipped = false;
    for key in keys {
        match open(ks, key, kind) {
            Err(e) if !retry => return e,
            Err(_) => skipped = true,
            Ok(None) => {}
            Ok(Some(_)) => {
                let popped = pop(ks, &[Bytes::from_static(pop_name), key.clone()]);
                let mut reply = vec![Reply::Bulk(key.clone())];
                match popped {
                    Reply::Array(parts) => reply.extend(parts),
                    Reply::Error(e) => return Reply::Error(e),
                    one => reply.push(one),
                }
                return Reply::Array(reply);
            }
        }
    }
    if skipped {
        SKIPPED
    } else {
        Reply::NilArray
    }
}

/// BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT count]: LMPOP's pop (and its checks); a
/// retry leaves out the keys of the other type.
fn blmpop(ks: &mut dyn Write, args: &[Bytes], retry: bool) -> Reply {
    let mut lmpop = vec![Bytes::from_static(b"lmpop")];
    lmpop.extend_from_slice(&args[2..]);
    if !retry {
        return lists::lmpop(ks, &lmpop);
    }
    let keys = source_keys(args);
    let usable: Vec<Bytes> = keys.iter().filter(|key| open(ks, key, Kind::List).is_ok()).cloned().collect();
    if usable.is_empty() {
        return SKIPPED;
    }
    let mut kept = vec![Bytes::from_static(b"lmpop"), Bytes::from(usable.len().to_string())];
    kept.extend(usable.iter().cloned());
    kept.extend_from_slice(&args[3 + keys.len()..]);
    match lists::lmpop(ks, &kept) {
        Reply::NilArray if usable.len() < keys.len() => SKIPPED,
        reply => reply,
    }
}
