//! Keyspace commands: DEL UNLINK EXISTS TYPE KEYS SCAN RANDOMKEY RENAME RENAMENX COPY TOUCH
//! DBSIZE FLUSHDB FLUSHALL.

use bytes::Bytes;
use ferrocask::Expiry;

use super::parse::{count, database_zero, glob_match, int, is, syntax, NOT_INTEGER};
use crate::db::{Read, Write};
use crate::reply::Reply;

/// DEL key... (and UNLINK).
pub(crate) fn del(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let mut deleted = 0;
    for key in &args[1..] {
        if ks.get(key).is_some() {
            if let Err(e) = ks.delete(key) {
                return e;
            }
            deleted += 1;
        }
    }
    count(deleted)
}

/// EXISTS key... (and TOUCH): how many of the keys (repeats counted) exist.
pub(crate) fn exists(ks: &dyn Read, args: &[Bytes]) -> Reply {
    count(args[1..].iter().filter(|k| ks.get(k).is_some()).count())
}

/// TYPE key.
pub(crate) fn type_of(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Status(if ks.get(&args[1]).is_some() { "string" } else { "none" })
}

/// KEYS pattern.
pub(crate) fn keys(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let all = ks.keys();
    let everything = &args[1][..] == b"*";
    Reply::Array(all.into_iter().filter(|k| everything || glob_match(&args[1], k)).map(Reply::bulk).collect())
}

/// DBSIZE.
pub(crate) fn dbsize(ks: &dyn Read, _args: &[Bytes]) -> Reply {
    count(ks.len())
}

/// RANDOMKEY.
pub(crate) fn randomkey(ks: &dyn Read, _args: &[Bytes]) -> Reply {
    let all = ks.keys();
    if all.is_empty() {
        return Reply::Nil;
    }
    let pick = (ks.now_ms() as usize).wrapping_mul(2654435761) % all.len();
    Reply::bulk(all[pick].clone())
}

/// SCAN's cursor for a key: a stable hash, never 0 (0 starts and ends a scan).
fn scan_position(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// A SCAN cursor as Redis reads it, with C's `strtoul`: an optional sign, then decimal digits
/// (none at all reads as 0, so `""` starts a scan), a `-` negating modulo 2^64 (so `-1` is the
/// largest cursor); no leading blank, nothing after the digits, nothing beyond 2^64 - 1.
fn scan_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul converts nothing and points back at the start: only an empty text ends there.
        return arg.is_empty().then_some(0);
    }
    let mut cursor: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        cursor = cursor.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { cursor.wrapping_neg() } else { cursor })
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. The cursor is a position in a stable hash
/// order of the keys, so a key present for the whole scan is returned at least once, as Redis
/// promises, without a cursor the hash index would have to keep.
pub(crate) fn scan(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(cursor) = scan_cursor(&args[1]) else { return Reply::error("ERR invalid cursor") };
    let (mut pattern, mut page, mut strings_only) = (None, 10usize, true);
    let mut j = 2;
    while j < args.len() {
        let Some(value) = args.get(j + 1) else { return syntax() };
        if is(&args[j], "count") {
            match int(value) {
                Ok(n) if n < 1 => return syntax(),
                Ok(n) => page = n as usize,
                Err(_) => return Reply::error(NOT_INTEGER),
            }
        } else if is(&args[j], "match") {
            pattern = Some(value.clone());
        } else if is(&args[j], "type") {
            strings_only = is(value, "string");
        } else {
            return syntax();
        }
        j += 2;
    }
    let mut all: Vec<(u64, Vec<u8>)> =
        ks.keys().into_iter().map(|k| (scan_position(&k), k)).filter(|(h, _)| *h >= cursor).collect();
    all.sort_unstable();
    // Keys of one hash stay on one page, so the next cursor never splits them.
    let mut end = all.len().min(page);
    while end < all.len() && end > 0 && all[end].0 == all[end - 1].0 {
        end += 1;
    }
    let next = all.get(end).map_or(0, |(h, _)| *h);
    let keys = all[..end]
        .iter()
        .filter(|(_, k)| strings_only && pattern.as_ref().is_none_or(|p| glob_match(p, k)))
        .map(|(_, k)| Reply::bulk(k.clone()))
        .collect();
    Reply::Array(vec![Reply::bulk(next.to_string().into_bytes()), Reply::Array(keys)])
}

/// RENAME src dst.
pub(crate) fn rename(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    move_key(ks, args, false)
}

/// RENAMENX src dst.
pub(crate) fn renamenx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    move_key(ks, args, true)
}

fn move_key(ks: &mut dyn Write, args: &[Bytes], nx: bool) -> Reply {
    let (src, dst) = (&args[1], &args[2]);
    let Some((value, expires)) = ks.get(src) else { return Reply::error("ERR no such key") };
    let done = if nx { Reply::Int(1) } else { Reply::OK };
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::OK };
    }
    if nx && ks.get(dst).is_some() {
        return Reply::Int(0);
    }
    let expiry = expires.map_or(Expiry::Never, Expiry::At);
    match ks.put(dst, &value, expiry).and_then(|()| ks.delete(src)) {
        Ok(()) => done,
        Err(e) => e,
    }
}

/// COPY src dst [DB 0] [REPLACE].
pub(crate) fn copy(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "db") && j + 1 < args.len() {
            if let Err(e) = database_zero(&args[j + 1]) {
                return e;
            }
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src == dst {
        return Reply::error("ERR source and destination objects are the same");
    }
    let Some((value, expires)) = ks.get(src) else { return Reply::Int(0) };
    if !replace && ks.get(dst).is_some() {
        return Reply::Int(0);
    }
    ks.put(dst, &value, expires.map_or(Expiry::Never, Expiry::At)).map_or_else(|e| e, |()| Reply::Int(1))
}

/// FLUSHDB [ASYNC|SYNC] (and FLUSHALL).
pub(crate) fn flushdb(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    match args.get(1) {
        None => {}
        Some(mode) if args.len() == 2 && (is(mode, "async") || is(mode, "sync")) => {}
        Some(_) => return syntax(),
    }
    for key in ks.keys() {
        if let Err(e) = ks.delete(&key) {
            return e;
        }
    }
    Reply::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21, item 8: Redis reads the cursor with `strtoul` (checked against redis-server
    /// 7.0.15): `-1` is the largest cursor, `""` is 0; `-1` and `""` were refused here.
    #[test]
    fn scan_cursors_are_read_as_strtoul_reads_them() {
        assert_eq!(scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(scan_cursor(b""), Some(0));
        assert_eq!(scan_cursor(b"+5"), Some(5));
        assert_eq!(scan_cursor(b"05"), Some(5));
        assert_eq!(scan_cursor(b"-0"), Some(0));
        assert_eq!(scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(scan_cursor(b"-9223372036854775809"), Some(9_223_372_036_854_775_807));
        for bad in [&b"18446744073709551616"[..], b" 5", b"5 ", b"1x", b"+", b"-", b"x"] {
            assert_eq!(scan_cursor(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
