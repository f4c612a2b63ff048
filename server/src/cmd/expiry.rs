//! Expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL PTTL EXPIRETIME
//! PEXPIRETIME, PERSIST. Times are ms since the Unix epoch, as the store keeps them.

use bytes::Bytes;
use ferrocask::Expiry;

use super::parse::{int, is};
use crate::collection::{self, find, Found};
use crate::db::{Read, Write};
use crate::reply::{quoted, Reply};

/// EXPIRE key seconds [NX|XX|GT|LT].
pub(crate) fn expire(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let now = ks.now_ms() as i64;
    set_expiry(ks, args, true, now, "expire")
}

/// PEXPIRE key ms [NX|XX|GT|LT].
pub(crate) fn pexpire(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let now = ks.now_ms() as i64;
    set_expiry(ks, args, false, now, "pexpire")
}

/// EXPIREAT key unix-seconds [NX|XX|GT|LT].
pub(crate) fn expireat(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_expiry(ks, args, true, 0, "expireat")
}

/// PEXPIREAT key unix-ms [NX|XX|GT|LT].
pub(crate) fn pexpireat(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_expiry(ks, args, false, 0, "pexpireat")
}

#[derive(Default)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis's `parseExtendedExpireArgumentsOrReply`.
fn parse_flags(args: &[Bytes]) -> Result<Flags, Reply> {
    let mut f = Flags::default();
    for opt in args {
        match () {
            _ if is(opt, "nx") => f.nx = true,
            _ if is(opt, "xx") => f.xx = true,
            _ if is(opt, "gt") => f.gt = true,
            _ if is(opt, "lt") => f.lt = true,
            _ => return Err(Reply::error([b"ERR Unsupported option ", quoted(opt)].concat())),
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(Reply::error("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// Redis's `expireGenericCommand`: `basetime` is now for relative commands, 0 for absolute.
fn set_expiry(ks: &mut dyn Write, args: &[Bytes], seconds: bool, basetime: i64, command: &str) -> Reply {
    let invalid = || Reply::error(format!("ERR invalid expire time in '{command}' command"));
    let flags = match parse_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let mut when = match int(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return invalid(),
        }
    }
    let Some(when) = when.checked_add(basetime) else { return invalid() };
    let key = &args[1];
    let Some(found) = find(ks, key) else { return Reply::Int(0) };
    let current = found.expires_ms().map(|ms| ms as i64);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|c| when <= c))
        || (flags.lt && current.is_some_and(|c| when >= c));
    if refused {
        return Reply::Int(0);
    }
    let written = if when <= ks.now_ms() as i64 { ks.delete(key) } else { retime(ks, key, found, Some(when as u64)) };
    written.map_or_else(|e| e, |()| Reply::Int(1))
}

/// Gives `key` (holding `found`) a new expiry (`None`: never): a string's record is rewritten
/// with its value, a collection's meta record alone (its members carry no expiry).
fn retime(ks: &mut dyn Write, key: &[u8], found: Found, expires_ms: Option<u64>) -> Result<(), Reply> {
    match found {
        Found::String(_) => match ks.get(key) {
            Some((value, _)) => ks.put_record(key, &value, expires_ms.map_or(Expiry::Never, Expiry::At)),
            None => Ok(()),
        },
        Found::Collection(mut meta) => collection::set_expiry(ks, key, &mut meta, expires_ms),
    }
}

/// TTL key.
pub(crate) fn ttl(ks: &dyn Read, args: &[Bytes]) -> Reply {
    time_left(ks, &args[1], false, false)
}

/// PTTL key.
pub(crate) fn pttl(ks: &dyn Read, args: &[Bytes]) -> Reply {
    time_left(ks, &args[1], true, false)
}

/// EXPIRETIME key.
pub(crate) fn expiretime(ks: &dyn Read, args: &[Bytes]) -> Reply {
    time_left(ks, &args[1], false, true)
}

/// PEXPIRETIME key.
pub(crate) fn pexpiretime(ks: &dyn Read, args: &[Bytes]) -> Reply {
    time_left(ks, &args[1], true, true)
}

/// Redis's `ttlGenericCommand`: -2 for a missing key, -1 for one without expiry.
fn time_left(ks: &dyn Read, key: &[u8], ms: bool, absolute: bool) -> Reply {
    let Some(found) = find(ks, key) else { return Reply::Int(-2) };
    let Some(expires) = found.expires_ms() else { return Reply::Int(-1) };
    let left = if absolute { expires as i64 } else { (expires as i64 - ks.now_ms() as i64).max(0) };
    Reply::Int(if ms { left } else { seconds_rounded(left) })
}

/// Milliseconds to the nearest second, half up, without overflowing near `i64::MAX` (where
/// `left + 500` wrapped to a negative EXPIRETIME; Redis answers the rounded value).
fn seconds_rounded(ms: i64) -> i64 {
    ((i128::from(ms) + 500) / 1000) as i64
}

/// PERSIST key.
pub(crate) fn persist(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let Some(found) = find(ks, &args[1]).filter(|found| found.expires_ms().is_some()) else { return Reply::Int(0) };
    retime(ks, &args[1], found, None).map_or_else(|e| e, |()| Reply::Int(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21, item 8: `PEXPIREAT k 9223372036854775807` then EXPIRETIME answered a negative
    /// number; Redis 7.0.15 answers 9223372036854776.
    #[test]
    fn expiretime_near_the_largest_time_does_not_wrap() {
        assert_eq!(seconds_rounded(i64::MAX), 9_223_372_036_854_776);
        assert_eq!(seconds_rounded(1_499), 1);
        assert_eq!(seconds_rounded(1_500), 2);
    }
}
