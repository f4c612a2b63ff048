//! String commands: GET SET and its relatives, counters, ranges and bits. Each parses its
//! arguments, then applies itself to a [`Read`] or [`Write`] view; writes run inside one store
//! transaction, so read-modify-write commands are atomic.
//!
//! Type checks (see `collection.rs`) cost a string hit nothing: a command that read the key with
//! `collection::string` knows it holds a string or nothing, and writes its record with
//! `put_record`; only a miss looks for a collection, and only the commands that overwrite
//! without reading (SETEX, PSETEX, MSET, SET over a collection) go through `Write::put`.

use bytes::Bytes;
use ferrocask::Expiry;

use super::parse::{count, int, is, syntax, NOT_INTEGER};
use crate::collection::{collection, string, wrongtype};
use crate::db::{Read, Write, VALUE_TOO_LARGE};
use crate::reply::Reply;

/// GET key.
pub(crate) fn get(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::bulk_or_nil(tri!(string(ks, &args[1])).map(|(v, _)| v))
}

/// MGET key...
pub(crate) fn mget(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Array(args[1..].iter().map(|k| Reply::bulk_or_nil(ks.get(k).map(|(v, _)| v))).collect())
}

/// STRLEN key. Reads the length only, never the value.
pub(crate) fn strlen(ks: &dyn Read, args: &[Bytes]) -> Reply {
    match ks.meta(&args[1]) {
        Some(m) => count(m.value_len),
        None if collection(ks, &args[1]).is_some() => wrongtype(),
        None => count(0),
    }
}

/// Which kind of command an expiry is parsed for: SET takes NX XX GET KEEPTTL, GETEX PERSIST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Set,
    GetEx,
}

/// The options of SET and GETEX.
#[derive(Default)]
struct Options {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expiry argument and its kind.
    expire: Option<(Bytes, ExpireKind)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Redis's `parseExtendedStringArgumentsOrReply`, conflicts and all.
fn parse_options(args: &[Bytes], family: Family) -> Result<Options, Reply> {
    let mut o = Options::default();
    let mut j = 0;
    while j < args.len() {
        let opt = &args[j];
        let next = args.get(j + 1);
        let no_expiry = o.expire.is_none();
        let expiry_free = |o: &Options, kind: ExpireKind| {
            !o.keepttl && !o.persist && o.expire.as_ref().is_none_or(|(_, k)| *k == kind)
        };
        if is(opt, "nx") && !o.xx && family == Family::Set {
            o.nx = true;
        } else if is(opt, "xx") && !o.nx && family == Family::Set {
            o.xx = true;
        } else if is(opt, "get") && family == Family::Set {
            o.get = true;
        } else if is(opt, "keepttl") && !o.persist && no_expiry && family == Family::Set {
            o.keepttl = true;
        } else if is(opt, "persist") && no_expiry && !o.keepttl && family == Family::GetEx {
            o.persist = true;
        } else if let Some(kind) = expire_kind(opt).filter(|k| expiry_free(&o, *k)) {
            let Some(value) = next else { return Err(syntax()) };
            o.expire = Some((value.clone(), kind));
            j += 1;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    Ok(o)
}

fn expire_kind(opt: &[u8]) -> Option<ExpireKind> {
    [("ex", ExpireKind::Ex), ("px", ExpireKind::Px), ("exat", ExpireKind::ExAt), ("pxat", ExpireKind::PxAt)]
        .into_iter()
        .find(|(name, _)| is(opt, name))
        .map(|(_, kind)| kind)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in ms, or its error.
fn expire_ms(now_ms: u64, arg: &[u8], kind: ExpireKind, command: &str) -> Result<u64, Reply> {
    let invalid = || Reply::error(format!("ERR invalid expire time in '{command}' command"));
    let n = int(arg)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { n * 1000 } else { n };
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms as i64).ok_or_else(invalid)?,
        _ => ms,
    };
    Ok(ms as u64)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL].
pub(crate) fn set(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let o = match parse_options(&args[3..], Family::Set) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expiry = match &o.expire {
        Some((arg, kind)) => match expire_ms(ks.now_ms(), arg, *kind, "set") {
            Ok(ms) => Expiry::At(ms),
            Err(e) => return e,
        },
        None if o.keepttl => Expiry::Keep,
        None => Expiry::Never,
    };
    let (key, value) = (&args[1], &args[2]);
    // As Redis: GET's WRONGTYPE comes first; NX and XX look at a key of any type.
    let (old, present) = match ks.get(key) {
        Some((v, _)) => (Some(v), true),
        None => (None, collection(ks, key).is_some()),
    };
    if o.get && present && old.is_none() {
        return wrongtype();
    }
    let skip = (o.nx && present) || (o.xx && !present);
    if !skip {
        // A string or nothing at the key: its record is all there is to write (no collection to
        // look for again).
        let written =
            if present && old.is_none() { ks.put(key, value, expiry) } else { ks.put_record(key, value, expiry) };
        if let Err(e) = written {
            return e;
        }
    }
    match (o.get, skip) {
        (true, _) => Reply::bulk_or_nil(old),
        (false, true) => Reply::Nil,
        (false, false) => Reply::OK,
    }
}

/// SETNX key value.
pub(crate) fn setnx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    if ks.exists(&args[1]) {
        return Reply::Int(0);
    }
    ks.put_record(&args[1], &args[2], Expiry::Never).map_or_else(|e| e, |()| Reply::Int(1))
}

/// SETEX key seconds value.
pub(crate) fn setex(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_expiring(ks, args, ExpireKind::Ex, "setex")
}

/// PSETEX key ms value.
pub(crate) fn psetex(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_expiring(ks, args, ExpireKind::Px, "psetex")
}

fn set_expiring(ks: &mut dyn Write, args: &[Bytes], kind: ExpireKind, command: &str) -> Reply {
    match expire_ms(ks.now_ms(), &args[2], kind, command) {
        Ok(ms) => ks.put(&args[1], &args[3], Expiry::At(ms)).map_or_else(|e| e, |()| Reply::OK),
        Err(e) => e,
    }
}

/// GETSET key value.
pub(crate) fn getset(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let old = tri!(string(ks, &args[1])).map(|(v, _)| v);
    ks.put_record(&args[1], &args[2], Expiry::Never).map_or_else(|e| e, |()| Reply::bulk_or_nil(old))
}

/// GETDEL key.
pub(crate) fn getdel(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let Some((old, _)) = tri!(string(ks, &args[1])) else { return Reply::Nil };
    ks.delete_record(&args[1]).map_or_else(|e| e, |()| Reply::bulk(old))
}

/// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST].
pub(crate) fn getex(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let o = match parse_options(&args[2..], Family::GetEx) {
        Ok(o) => o,
        Err(e) => return e,
    };
    // As in Redis 7.0: a missing key is nil before the expiry is checked.
    let key = &args[1];
    let Some((value, ttl)) = tri!(string(ks, key)) else { return Reply::Nil };
    let expire = match &o.expire {
        Some((arg, kind)) => match expire_ms(ks.now_ms(), arg, *kind, "getex") {
            Ok(ms) => Some(ms),
            Err(e) => return e,
        },
        None => None,
    };
    let written = match (expire, o.persist) {
        (Some(ms), _) if ms <= ks.now_ms() => ks.delete_record(key),
        (Some(ms), _) => ks.put_record(key, &value, Expiry::At(ms)),
        (None, true) if ttl.is_some() => ks.put_record(key, &value, Expiry::Never),
        _ => Ok(()),
    };
    written.map_or_else(|e| e, |()| Reply::bulk(value))
}

/// MSET key value [key value...].
pub(crate) fn mset(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::error("ERR wrong number of arguments for 'mset' command");
    }
    put_pairs(ks, &args[1..]).map_or_else(|e| e, |()| Reply::OK)
}

/// MSETNX key value [key value...].
pub(crate) fn msetnx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::error("ERR wrong number of arguments for 'msetnx' command");
    }
    if args[1..].chunks(2).any(|pair| ks.exists(&pair[0])) {
        return Reply::Int(0);
    }
    put_pairs(ks, &args[1..]).map_or_else(|e| e, |()| Reply::Int(1))
}

/// Writes every pair (if one fails, the caller's savepoint undoes the others).
fn put_pairs(ks: &mut dyn Write, pairs: &[Bytes]) -> Result<(), Reply> {
    pairs.chunks(2).try_for_each(|pair| ks.put(&pair[0], &pair[1], Expiry::Never))
}

/// APPEND key value.
pub(crate) fn append(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let mut value = tri!(string(ks, &args[1])).map(|(v, _)| v).unwrap_or_default();
    if value.len() + args[2].len() > ks.value_bytes_max() {
        return Reply::error(VALUE_TOO_LARGE);
    }
    value.extend_from_slice(&args[2]);
    ks.put_record(&args[1], &value, Expiry::Keep).map_or_else(|e| e, |()| count(value.len()))
}

/// GETRANGE key start end (and SUBSTR).
pub(crate) fn getrange(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let (start, end) = match (int(&args[2]), int(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let value = tri!(string(ks, &args[1])).map(|(v, _)| v).unwrap_or_default();
    match byte_range(start, end, value.len() as i64) {
        Some((from, to)) => Reply::bulk(value[from..=to].to_vec()),
        None => Reply::bulk(Bytes::new()),
    }
}

/// The inclusive byte range `start..=end` (negative: from the end) of a string of `len`, as
/// GETRANGE clamps it; `None` if empty.
fn byte_range(mut start: i64, mut end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    (start <= end && len > 0).then_some((start as usize, end as usize))
}

/// SETRANGE key offset value.
pub(crate) fn setrange(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let offset = match int(&args[2]) {
        Ok(n) if n < 0 => return Reply::error("ERR offset is out of range"),
        Ok(n) => n as u64,
        Err(e) => return e,
    };
    let patch = &args[3];
    let current = tri!(string(ks, &args[1])).map(|(v, _)| v);
    if patch.is_empty() {
        return count(current.map_or(0, |v| v.len()));
    }
    if offset.saturating_add(patch.len() as u64) > ks.value_bytes_max() as u64 {
        return Reply::error(VALUE_TOO_LARGE);
    }
    let offset = offset as usize;
    let mut value = current.unwrap_or_default();
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    ks.put_record(&args[1], &value, Expiry::Keep).map_or_else(|e| e, |()| count(value.len()))
}

/// INCR key.
pub(crate) fn incr(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    add(ks, &args[1], 1)
}

/// DECR key.
pub(crate) fn decr(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    add(ks, &args[1], -1)
}

/// INCRBY key n.
pub(crate) fn incrby(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    int(&args[2]).map_or_else(|e| e, |n| add(ks, &args[1], n))
}

/// DECRBY key n.
pub(crate) fn decrby(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    match int(&args[2]) {
        Ok(i64::MIN) => Reply::error("ERR decrement would overflow"),
        Ok(n) => add(ks, &args[1], -n),
        Err(e) => e,
    }
}

fn add(ks: &mut dyn Write, key: &[u8], by: i64) -> Reply {
    let current = match tri!(string(ks, key)) {
        Some((v, _)) => match super::parse::strict_i64(&v) {
            Some(n) => n,
            None => return Reply::error(NOT_INTEGER),
        },
        None => 0,
    };
    let Some(new) = current.checked_add(by) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    ks.put_record(key, new.to_string().as_bytes(), Expiry::Keep).map_or_else(|e| e, |()| Reply::Int(new))
}

/// INCRBYFLOAT key increment.
pub(crate) fn incrbyfloat(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let not_float = || Reply::error("ERR value is not a valid float");
    // As Redis: the key's type is checked before the increment is parsed.
    let current = tri!(string(ks, &args[1]));
    let Some(by) = super::float::LongDouble::parse(&args[2]) else { return not_float() };
    let current = match current {
        Some((v, _)) => match super::float::LongDouble::parse(&v) {
            Some(n) => n,
            None => return not_float(),
        },
        None => super::float::LongDouble::zero(),
    };
    let Some(sum) = current.add(&by) else {
        return Reply::error("ERR increment would produce NaN or Infinity");
    };
    let text = sum.to_string();
    ks.put_record(&args[1], text.as_bytes(), Expiry::Keep).map_or_else(|e| e, |()| Reply::bulk(text.into_bytes()))
}

/// Redis's bit offset argument: an integer in `0..value_bytes_max * 8`.
fn bit_offset(arg: &[u8], value_bytes_max: usize) -> Result<u64, Reply> {
    match super::parse::strict_i64(arg) {
        Some(n) if n >= 0 && ((n as u64) >> 3) < value_bytes_max as u64 => Ok(n as u64),
        _ => Err(Reply::error("ERR bit offset is not an integer or out of range")),
    }
}

/// SETBIT key offset 0|1.
pub(crate) fn setbit(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(&args[2], ks.value_bytes_max()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let on = match super::parse::strict_i64(&args[3]) {
        Some(b @ (0 | 1)) => b as u8,
        _ => return Reply::error("ERR bit is not an integer or out of range"),
    };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let mut value = tri!(string(ks, &args[1])).map(|(v, _)| v).unwrap_or_default();
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let old = value[byte] & mask != 0;
    value[byte] = if on == 1 { value[byte] | mask } else { value[byte] & !mask };
    ks.put_record(&args[1], &value, Expiry::Keep).map_or_else(|e| e, |()| Reply::Int(old as i64))
}

/// GETBIT key offset.
pub(crate) fn getbit(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(&args[2], ks.value_bytes_max()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let byte = (offset >> 3) as usize;
    let value = tri!(string(ks, &args[1])).map(|(v, _)| v).unwrap_or_default();
    let bit = value.get(byte).is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0);
    Reply::Int(bit as i64)
}

/// BITCOUNT key [start end [BYTE|BIT]]. As in Redis 7.0, a missing key counts 0 before the
/// arguments are looked at.
pub(crate) fn bitcount(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some((value, _)) = tri!(string(ks, &args[1])) else { return Reply::Int(0) };
    let len = value.len() as i64;
    let (start, end, bits) = match args.len() {
        2 => (0, len - 1, false),
        4 | 5 => {
            let (start, end) = match (int(&args[2]), int(&args[3])) {
                (Ok(s), Ok(e)) => (s, e),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            // Redis 7.0 answers this before it looks at the unit (a bad one included).
            if start < 0 && end < 0 && start > end {
                return Reply::Int(0);
            }
            let bits = match args.get(4) {
                None => false,
                Some(unit) if is(unit, "bit") => true,
                Some(unit) if is(unit, "byte") => false,
                Some(_) => return syntax(),
            };
            (start, end, bits)
        }
        _ => return syntax(),
    };
    Reply::Int(count_bits(&value, start, end, bits) as i64)
}

fn count_bits(value: &[u8], mut start: i64, mut end: i64, bits: bool) -> u64 {
    // Two offsets from the end in the wrong order count nothing, even when clamping to the start
    // would make them equal (Redis 7.0 checks this first).
    if start < 0 && end < 0 && start > end {
        return 0;
    }
    let total = if bits { value.len() as i64 * 8 } else { value.len() as i64 };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return 0;
    }
    if !bits {
        return value[start as usize..=end as usize].iter().map(|b| u64::from(b.count_ones())).sum();
    }
    (start..=end).filter(|&i| value[(i >> 3) as usize] & (1 << (7 - (i & 7))) != 0).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_clamps_as_redis_does() {
        assert_eq!(byte_range(0, -1, 5), Some((0, 4)));
        assert_eq!(byte_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(byte_range(-1, -3, 5), None);
        assert_eq!(byte_range(3, 100, 5), Some((3, 4)));
        assert_eq!(byte_range(0, 0, 0), None);
    }

    #[test]
    fn bitcount_counts_bytes_or_bits() {
        assert_eq!(count_bits(b"foobar", 0, -1, false), 26);
        assert_eq!(count_bits(b"foobar", 1, 1, false), 6);
        assert_eq!(count_bits(b"foobar", 5, 30, true), 17);
    }

    /// Issue 21, item 8: `BITCOUNT k -100 -200` on a 6-byte value clamped both to 0 and counted
    /// the first byte; Redis answers 0.
    #[test]
    fn bitcount_with_negative_start_after_end_counts_nothing() {
        assert_eq!(count_bits(b"foobar", -100, -200, false), 0);
        assert_eq!(count_bits(b"foobar", -100, -200, true), 0);
        assert_eq!(count_bits(b"foobar", -100, -1, false), 26);
    }
}
