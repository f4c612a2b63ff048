//! Keyspace commands: DEL UNLINK EXISTS TYPE KEYS SCAN RANDOMKEY RENAME RENAMENX COPY TOUCH
//! DBSIZE FLUSHDB FLUSHALL, over every type (strings and the collections of `collection.rs`).

use bytes::Bytes;
use ferrocask::Expiry;

use super::parse::{count, database_zero, glob_match, int, is, syntax, NOT_INTEGER};
use crate::collection::{self, find, user_keys, Found};
use crate::db::{Read, Write};
use crate::reply::Reply;

/// DEL key... (and UNLINK).
pub(crate) fn del(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let mut deleted = 0;
    for key in &args[1..] {
        if ks.exists(key) {
            if let Err(e) = ks.delete(key) {
                return e;
            }
            deleted += 1;
        }
    }
    count(deleted)
}

/// EXISTS key... (and TOUCH): how many of the keys (repeats counted) exist. Reads no value.
pub(crate) fn exists(ks: &dyn Read, args: &[Bytes]) -> Reply {
    count(args[1..].iter().filter(|k| ks.exists(k)).count())
}

/// TYPE key. Reads no string's value (a collection's meta record is read).
pub(crate) fn type_of(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Status(find(ks, &args[1]).map_or("none", |found| found.type_name()))
}

/// KEYS pattern. Each collection is listed once, by its meta record; the listing walks the
/// members' records too (until keyspaces, issue 24, keep them apart).
pub(crate) fn keys(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let all = user_keys(ks.keys());
    let everything = &args[1][..] == b"*";
    Reply::Array(all.into_iter().filter(|k| everything || glob_match(&args[1], k)).map(Reply::bulk).collect())
}

/// DBSIZE.
pub(crate) fn dbsize(ks: &dyn Read, _args: &[Bytes]) -> Reply {
    count(collection::user_key_count(ks))
}

/// RANDOMKEY: a key of the scan page at a pseudo-random stripe (the scan wraps around once if
/// that page and the ones after it are empty). Costs one page, never the whole keyspace.
pub(crate) fn randomkey(ks: &dyn Read, _args: &[Bytes]) -> Reply {
    let pick = (ks.now_ms() as usize).wrapping_mul(2654435761);
    let start = (pick % RANDOMKEY_START_CURSORS) as u64;
    let (mut cursor, mut wrapped) = (start, false);
    loop {
        let page = ks.scan(cursor, 1);
        let keys = user_keys(page.keys);
        if !keys.is_empty() {
            return Reply::bulk(keys[pick % keys.len()].clone());
        }
        // One whole pass, from `start` to the end and from 0 on, found no key. (Not "a page
        // from 0 ended the scan": a page may hold only keys the view hides, as a cluster
        // member's own, and end early with none to show.)
        if page.cursor == 0 {
            if wrapped || start == 0 {
                return Reply::Nil;
            }
            wrapped = true;
        }
        cursor = page.cursor;
    }
}

/// How many scan cursors RANDOMKEY starts from: the index's default stripe count (a cursor past
/// the last stripe just ends the first pass).
const RANDOMKEY_START_CURSORS: usize = 256;

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

/// SCAN's options, and HSCAN's and SSCAN's (which take no TYPE).
pub(crate) struct ScanOptions {
    pub(crate) pattern: Option<Bytes>,
    pub(crate) count: usize,
    pub(crate) type_name: Option<Bytes>,
}

impl ScanOptions {
    /// Whether `item` passes MATCH.
    pub(crate) fn matches(&self, item: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| glob_match(p, item))
    }
}

/// Redis's `scanGenericCommand`'s options: MATCH, COUNT (at least 1) and, for SCAN only, TYPE.
pub(crate) fn scan_options(args: &[Bytes], with_type: bool) -> Result<ScanOptions, Reply> {
    let mut o = ScanOptions { pattern: None, count: 10, type_name: None };
    let mut j = 0;
    while j < args.len() {
        let Some(value) = args.get(j + 1) else { return Err(syntax()) };
        if is(&args[j], "count") {
            match int(value) {
                Ok(n) if n < 1 => return Err(syntax()),
                Ok(n) => o.count = n as usize,
                Err(_) => return Err(Reply::error(NOT_INTEGER)),
            }
        } else if is(&args[j], "match") {
            o.pattern = Some(value.clone());
        } else if is(&args[j], "type") && with_type {
            o.type_name = Some(value.clone());
        } else {
            return Err(syntax());
        }
        j += 2;
    }
    Ok(o)
}

/// The cursor argument of SCAN, HSCAN and SSCAN.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    scan_cursor(arg).ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. The cursor is the store's scan cursor (an
/// index stripe): a page costs the keys of the stripes it covers, and every key present for the
/// whole scan is returned, as Redis promises.
pub(crate) fn scan(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let cursor = tri!(parse_cursor(&args[1]));
    let o = tri!(scan_options(&args[2..], true));
    let (type_name, page_len) = (o.type_name.clone(), o.count);
    let page = ks.scan(cursor, page_len);
    // As Redis 7.0: an unknown TYPE filters every key out.
    let of_type =
        |k: &[u8]| type_name.as_ref().is_none_or(|t| find(ks, k).is_some_and(|found| is(t, found.type_name())));
    let keys = user_keys(page.keys).into_iter().filter(|k| o.matches(k) && of_type(k)).map(Reply::bulk).collect();
    Reply::Array(vec![Reply::bulk(page.cursor.to_string().into_bytes()), Reply::Array(keys)])
}

/// A scan's reply: the next cursor, then the items.
pub(crate) fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(next.to_string().into_bytes()), Reply::Array(items)])
}

/// HSCAN's and SSCAN's reply for a missing key.
pub(crate) fn empty_scan() -> Reply {
    scan_reply(0, Vec::new())
}

/// OBJECT's help, as Redis 7.0 prints it.
pub(crate) const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// OBJECT ENCODING|REFCOUNT|FREQ|IDLETIME key, OBJECT HELP. ENCODING answers with Redis's
/// names: a string by Redis's rule on its current value (`int`, `embstr` up to 44 bytes, `raw`),
/// a hash or set `hashtable`, a list `quicklist` and a sorted set `skiplist` (ferrocask has one representation per
/// type, a record per member, whose costs are those of Redis's large encodings). REFCOUNT is 1;
/// FREQ and IDLETIME are not tracked.
pub(crate) fn object(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "help") && args.len() == 2 {
        return Reply::Array(OBJECT_HELP.iter().map(|line| Reply::Status(line)).collect());
    }
    let Some(name) = ["encoding", "refcount", "freq", "idletime", "help"].into_iter().find(|n| is(sub, n)) else {
        return Reply::error(
            [&b"ERR unknown subcommand '"[..], crate::reply::quoted_cut(sub), b"'. Try OBJECT HELP."].concat(),
        );
    };
    if args.len() != 3 || name == "help" {
        return Reply::error(format!("ERR wrong number of arguments for 'object|{name}' command"));
    }
    let Some(found) = find(ks, &args[2]) else { return Reply::Nil };
    match name {
        "encoding" => Reply::bulk(encoding(ks, &args[2], &found)),
        "refcount" => Reply::Int(1),
        _ => Reply::error(format!(
            "ERR OBJECT {} is not supported by ferrocask (it keeps no access times)",
            name.to_uppercase()
        )),
    }
}

/// OBJECT ENCODING's answer for `key`, which holds `found`.
fn encoding(ks: &dyn Read, key: &[u8], found: &Found) -> &'static str {
    match found {
        Found::String(meta) if meta.value_len <= 20 => {
            let int = ks.get(key).is_some_and(|(v, _)| super::parse::strict_i64(&v).is_some());
            if int {
                "int"
            } else {
                "embstr"
            }
        }
        Found::String(meta) if meta.value_len <= 44 => "embstr",
        Found::String(_) => "raw",
        Found::Collection(meta) => match meta.kind {
            collection::Kind::Hash | collection::Kind::Set => "hashtable",
            collection::Kind::List => "quicklist",
            collection::Kind::ZSet => "skiplist",
        },
    }
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
    let Some(found) = find(ks, src) else { return Reply::error("ERR no such key") };
    let done = if nx { Reply::Int(1) } else { Reply::OK };
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::OK };
    }
    if nx && ks.exists(dst) {
        return Reply::Int(0);
    }
    match copy_to(ks, src, found, dst).and_then(|()| ks.delete(src)) {
        Ok(()) => done,
        Err(e) => e,
    }
}

/// Writes what `src` holds (`found`) at `dst`, with its expiry, replacing whatever `dst` held.
/// A string costs its value; a collection is rewritten member by member under a new generation
/// (its member keys hold its user key): O(members), bounded by one batch.
fn copy_to(ks: &mut dyn Write, src: &[u8], found: Found, dst: &[u8]) -> Result<(), Reply> {
    match found {
        Found::String(_) => {
            let Some((value, expires)) = ks.get(src) else { return Ok(()) };
            ks.put(dst, &value, expires.map_or(Expiry::Never, Expiry::At))
        }
        Found::Collection(meta) => {
            ks.delete(dst)?;
            collection::copy(ks, src, &meta, dst)
        }
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
    let Some(found) = find(ks, src) else { return Reply::Int(0) };
    if !replace && ks.exists(dst) {
        return Reply::Int(0);
    }
    copy_to(ks, src, found, dst).map_or_else(|e| e, |()| Reply::Int(1))
}

/// FLUSHDB [ASYNC|SYNC] (and FLUSHALL).
pub(crate) fn flushdb(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    match args.get(1) {
        None => {}
        Some(mode) if args.len() == 2 && (is(mode, "async") || is(mode, "sync")) => {}
        Some(_) => return syntax(),
    }
    // Every record, the collections' included; not the generation counter, so that no later
    // collection reuses a generation whose members a flush in several rounds has not reached.
    for key in ks.keys() {
        if key == collection::GENERATION_KEY {
            continue;
        }
        if let Err(e) = ks.delete_record(&key) {
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
