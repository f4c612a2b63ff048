//! Sorted-set commands (a first part): ZADD (NX XX GT LT CH INCR) ZINCRBY ZSCORE ZMSCORE ZCARD
//! ZREM ZRANGE (BYSCORE REV LIMIT WITHSCORES) ZRANGEBYSCORE ZREVRANGEBYSCORE ZREVRANGE ZCOUNT
//! ZRANK ZREVRANK ZPOPMIN ZPOPMAX ZREMRANGEBYSCORE ZREMRANGEBYRANK, with Redis 7.0's replies and
//! errors. A sorted set is a collection (`collection.rs`) with two records per member: the
//! member record (its value the score's bits), found by the member, and a score-index record
//! (score, then member, in the key), which ranges walk in order.

use std::ops::Bound;

use bytes::Bytes;
use ferrocask::Expiry;

use super::parse::{count, int, is, strict_i64, syntax};
use crate::collection::{self as coll, open, open_or_create, save, Kind, Meta};
use crate::db::{Read, Write};
use crate::reply::Reply;

const NOT_FLOAT: &str = "ERR value is not a valid float";
const RANGE_NOT_FLOAT: &str = "ERR min or max is not a float";

/// A score as Redis's `getDoubleFromObject` reads it (`strtod` on the whole text): no leading
/// blank, not NaN, not out of a double's range (an overflow or a non-zero text that underflows
/// to 0). Hex floats, which `strtod` reads, are refused.
fn parse_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace() || c == '\x0b') {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    let body = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let literal_inf = body == "inf" || body == "infinity";
    if value.is_nan() || (value.is_infinite() && !literal_inf) {
        return None;
    }
    let mantissa = body.split('e').next().unwrap_or("");
    if value == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return None;
    }
    Some(value)
}

/// One end of a score range as Redis's `zslParseRange` reads it: `(` for exclusive, then
/// `strtod` (leading blanks allowed, overflow to infinity, NaN refused).
fn parse_range_end(text: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, text) = match text.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let text = std::str::from_utf8(text).ok()?.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    // `strtod` converts nothing in an empty text and stops at its end: 0.
    let value: f64 = if text.is_empty() { 0.0 } else { text.parse().ok()? };
    (!value.is_nan()).then_some((value, exclusive))
}

/// A score range.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    min_exclusive: bool,
    max: f64,
    max_exclusive: bool,
}

fn parse_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    match (parse_range_end(min), parse_range_end(max)) {
        (Some((min, min_exclusive)), Some((max, max_exclusive))) => {
            Ok(ScoreRange { min, min_exclusive, max, max_exclusive })
        }
        _ => Err(Reply::error(RANGE_NOT_FLOAT)),
    }
}

/// A member's score: its member record's value.
fn score_of(ks: &dyn Read, key: &[u8], meta: &Meta, member: &[u8]) -> Option<f64> {
    let value = coll::member(ks, key, meta, member)?;
    Some(f64::from_bits(u64::from_be_bytes(value.try_into().ok()?)))
}

/// Sets a member's score (both records; the old index record goes). The caller [`save`]s.
fn set_score(
    ks: &mut dyn Write,
    key: &[u8],
    meta: &mut Meta,
    member: &[u8],
    old: Option<f64>,
    score: f64,
) -> Result<(), Reply> {
    let score = if score == 0.0 { 0.0 } else { score };
    if let Some(old) = old {
        ks.delete_record(&coll::score_key(key, meta, old, member))?;
    }
    ks.put_record(&coll::score_key(key, meta, score, member), b"", Expiry::Never)?;
    coll::put_member(ks, key, meta, member, &score.to_bits().to_be_bytes())?;
    Ok(())
}

/// Removes a member (both records); true if it was there. The caller [`save`]s.
fn remove(ks: &mut dyn Write, key: &[u8], meta: &mut Meta, member: &[u8]) -> Result<bool, Reply> {
    let Some(score) = score_of(ks, key, meta, member) else { return Ok(false) };
    ks.delete_record(&coll::score_key(key, meta, score, member))?;
    coll::remove_member(ks, key, meta, member)
}

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...].
pub(crate) fn zadd(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    add(ks, args, false)
}

/// ZINCRBY key increment member: ZADD's INCR (its option parsing included, as Redis's).
pub(crate) fn zincrby(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    add(ks, args, true)
}

/// Redis's `zaddGenericCommand`.
fn add(ks: &mut dyn Write, args: &[Bytes], incr: bool) -> Reply {
    let mut f = AddFlags { incr, ..AddFlags::default() };
    let mut at = 2;
    while at < args.len() {
        let opt = &args[at];
        match () {
            _ if is(opt, "nx") => f.nx = true,
            _ if is(opt, "xx") => f.xx = true,
            _ if is(opt, "ch") => f.ch = true,
            _ if is(opt, "incr") => f.incr = true,
            _ if is(opt, "gt") => f.gt = true,
            _ if is(opt, "lt") => f.lt = true,
            _ => break,
        }
        at += 1;
    }
    let pairs = &args[at..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return syntax();
    }
    if f.nx && f.xx {
        return Reply::error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs.len() > 2 {
        return Reply::error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        match parse_score(&pair[0]) {
            Some(score) => scores.push(score),
            None => return Reply::error(NOT_FLOAT),
        }
    }
    let key = &args[1];
    let existing = tri!(open(ks, key, Kind::ZSet));
    if existing.is_none() && f.xx {
        return if f.incr { Reply::Nil } else { Reply::Int(0) };
    }
    let mut meta = match existing {
        Some(meta) => meta,
        None => tri!(open_or_create(ks, key, Kind::ZSet)),
    };
    let (mut added, mut updated, mut processed, mut last) = (0, 0, 0, 0.0);
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        let member = &pair[1];
        match score_of(ks, key, &meta, member) {
            Some(current) => {
                if f.nx {
                    continue;
                }
                let score = if f.incr { current + score } else { score };
                if score.is_nan() {
                    return Reply::error("ERR resulting score is not a number (NaN)");
                }
                if (f.lt && score >= current) || (f.gt && score <= current) {
                    continue;
                }
                processed += 1;
                last = score;
                if score != current {
                    tri!(set_score(ks, key, &mut meta, member, Some(current), score));
                    updated += 1;
                }
            }
            None if !f.xx => {
                tri!(set_score(ks, key, &mut meta, member, None, score));
                added += 1;
                processed += 1;
                last = score;
            }
            None => {}
        }
    }
    if added + updated > 0 {
        tri!(save(ks, key, &mut meta));
    }
    if f.incr {
        // The score as computed (Redis answers -0 for a new member at -0, and stores 0).
        return if processed > 0 { Reply::Double(last) } else { Reply::Nil };
    }
    Reply::Int(if f.ch { added + updated } else { added })
}

/// ZREM key member...
pub(crate) fn zrem(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Int(0) };
    let mut removed = 0;
    for member in &args[2..] {
        removed += i64::from(tri!(remove(ks, key, &mut meta, member)));
    }
    if removed > 0 {
        tri!(save(ks, key, &mut meta));
    }
    Reply::Int(removed)
}

/// ZCARD key.
pub(crate) fn zcard(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(open(ks, &args[1], Kind::ZSet)).map_or(0, |m| m.count as i64))
}

/// ZSCORE key member.
pub(crate) fn zscore(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::ZSet)) else { return Reply::Nil };
    score_of(ks, &args[1], &meta, &args[2]).map_or(Reply::Nil, Reply::Double)
}

/// ZMSCORE key member...
pub(crate) fn zmscore(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let meta = tri!(open(ks, &args[1], Kind::ZSet));
    let score = |m: &Bytes| meta.as_ref().and_then(|meta| score_of(ks, &args[1], meta, m));
    Reply::Array(args[2..].iter().map(|m| score(m).map_or(Reply::Nil, Reply::Double)).collect())
}

/// The score-index bounds of a score range (`None`: empty).
fn score_bounds(key: &[u8], meta: &Meta, range: ScoreRange) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let min = coll::score_slot(range.min);
    let min = if range.min_exclusive { min.checked_add(1)? } else { min };
    let max = coll::score_slot(range.max);
    let end = if range.max_exclusive { Some(max) } else { max.checked_add(1) };
    if end.is_some_and(|end| end <= min) {
        return None;
    }
    Some((coll::score_position(key, meta, min, b""), end.map(|end| coll::score_position(key, meta, end, b""))))
}

/// The score-index records in `range`, from `offset` on, at most `limit` (Redis's LIMIT: a
/// negative offset gives nothing, a negative limit no limit).
fn in_range(
    ks: &dyn Read,
    key: &[u8],
    meta: &Meta,
    range: ScoreRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<Vec<u8>> {
    if offset < 0 || limit == 0 {
        return Vec::new();
    }
    let Some((start, end)) = score_bounds(key, meta, range) else { return Vec::new() };
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let take = if limit < 0 { usize::MAX } else { (offset as usize).saturating_add(limit as usize) };
    let mut records = coll::score_records(ks, key, meta, Bound::Included(&start), end, rev, take);
    records.drain(..records.len().min(offset as usize));
    records
}

/// The score-index records of ranks `start..=end` (Redis's clamping; ranks from the highest if
/// `rev`).
fn by_rank(ks: &dyn Read, key: &[u8], meta: &Meta, start: i64, end: i64, rev: bool) -> Vec<Vec<u8>> {
    let len = meta.count as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return Vec::new();
    }
    let end = end.min(len - 1);
    let mut records = coll::score_records(ks, key, meta, Bound::Unbounded, Bound::Unbounded, rev, end as usize + 1);
    records.drain(..start as usize);
    records
}

/// The reply of a range: members, or members with their scores.
fn range_reply(key: &[u8], records: Vec<Vec<u8>>, with_scores: bool) -> Reply {
    let decoded = records.iter().map(|r| coll::decode_score_record(key, r));
    if with_scores {
        Reply::Pairs(decoded.map(|(score, m)| (Reply::bulk(m.to_vec()), Reply::Double(score))).collect())
    } else {
        Reply::Array(decoded.map(|(_, m)| Reply::bulk(m.to_vec())).collect())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
}

/// Redis's `zrangeGenericCommand` (without BYLEX and the STORE form): ZRANGE, ZREVRANGE,
/// ZRANGEBYSCORE, ZREVRANGEBYSCORE.
fn zrange_generic(ks: &dyn Read, args: &[Bytes], mut kind: RangeType, mut rev: Option<bool>) -> Reply {
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = 4;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j];
        if is(opt, "withscores") {
            with_scores = true;
        } else if is(opt, "limit") && left >= 2 {
            offset = tri!(int(&args[j + 1]));
            limit = tri!(int(&args[j + 2]));
            j += 2;
        } else if rev.is_none() && is(opt, "rev") {
            rev = Some(true);
        } else if kind == RangeType::Auto && is(opt, "byscore") {
            kind = RangeType::Score;
        } else if kind == RangeType::Auto && is(opt, "bylex") {
            return Reply::error("ERR ZRANGE ... BYLEX is not supported by ferrocask yet");
        } else {
            return syntax();
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = if kind == RangeType::Auto { RangeType::Rank } else { kind };
    if limit != -1 && kind == RangeType::Rank {
        return Reply::error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    let (min, max) = if rev && kind == RangeType::Score { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let key = &args[1];
    match kind {
        RangeType::Score => {
            let range = tri!(parse_range(min, max));
            let Some(meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Array(Vec::new()) };
            range_reply(key, in_range(ks, key, &meta, range, rev, offset, limit), with_scores)
        }
        _ => {
            let (start, end) = (tri!(int(min)), tri!(int(max)));
            let Some(meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Array(Vec::new()) };
            range_reply(key, by_rank(ks, key, &meta, start, end, rev), with_scores)
        }
    }
}

/// ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES].
pub(crate) fn zrange(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Auto, None)
}

/// ZREVRANGE key start stop [WITHSCORES].
pub(crate) fn zrevrange(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Rank, Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count].
pub(crate) fn zrangebyscore(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Score, Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count].
pub(crate) fn zrevrangebyscore(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Score, Some(true))
}

/// ZCOUNT key min max: O(log n + counted) on an ordered prefix.
pub(crate) fn zcount(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let range = tri!(parse_range(&args[2], &args[3]));
    let Some(meta) = tri!(open(ks, &args[1], Kind::ZSet)) else { return Reply::Int(0) };
    count(in_range(ks, &args[1], &meta, range, false, 0, -1).len())
}

/// ZRANK / ZREVRANK key member: O(rank) (the store keeps no rank counts).
fn rank(ks: &dyn Read, args: &[Bytes], rev: bool) -> Reply {
    let key = &args[1];
    let Some(meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Nil };
    let Some(score) = score_of(ks, key, &meta, &args[2]) else { return Reply::Nil };
    let at = coll::score_key(key, &meta, score, &args[2]);
    let before = coll::score_records(ks, key, &meta, Bound::Unbounded, Bound::Excluded(&at), false, usize::MAX).len();
    Reply::Int(if rev { meta.count as i64 - 1 - before as i64 } else { before as i64 })
}

/// ZRANK key member.
pub(crate) fn zrank(ks: &dyn Read, args: &[Bytes]) -> Reply {
    rank(ks, args, false)
}

/// ZREVRANK key member.
pub(crate) fn zrevrank(ks: &dyn Read, args: &[Bytes]) -> Reply {
    rank(ks, args, true)
}

/// ZPOPMIN / ZPOPMAX key [count].
fn pop(ks: &mut dyn Write, args: &[Bytes], max: bool) -> Reply {
    if args.len() > 3 {
        return syntax();
    }
    let wanted = match args.get(2) {
        None => None,
        Some(arg) => match strict_i64(arg) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Reply::error("ERR value is out of range, must be positive"),
        },
    };
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Array(Vec::new()) };
    let n = usize::try_from(wanted.unwrap_or(1)).unwrap_or(usize::MAX);
    let records = coll::score_records(ks, key, &meta, Bound::Unbounded, Bound::Unbounded, max, n);
    let mut popped = Vec::with_capacity(records.len());
    for record in &records {
        let (score, member) = coll::decode_score_record(key, record);
        tri!(remove(ks, key, &mut meta, member));
        popped.push((Reply::bulk(member.to_vec()), Reply::Double(score)));
    }
    if !popped.is_empty() {
        tri!(save(ks, key, &mut meta));
    }
    match wanted {
        None => Reply::Array(popped.into_iter().flat_map(|(m, s)| [m, s]).collect()),
        Some(_) => Reply::Pairs(popped),
    }
}

/// ZPOPMIN key [count].
pub(crate) fn zpopmin(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    pop(ks, args, false)
}

/// ZPOPMAX key [count].
pub(crate) fn zpopmax(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    pop(ks, args, true)
}

/// Removes the members of `records` (score-index records) and saves.
fn remove_records(ks: &mut dyn Write, key: &[u8], meta: &mut Meta, records: Vec<Vec<u8>>) -> Reply {
    for record in &records {
        let (_, member) = coll::decode_score_record(key, record);
        tri!(remove(ks, key, meta, member));
    }
    if !records.is_empty() {
        tri!(save(ks, key, meta));
    }
    count(records.len())
}

/// ZREMRANGEBYSCORE key min max.
pub(crate) fn zremrangebyscore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let range = tri!(parse_range(&args[2], &args[3]));
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Int(0) };
    let records = in_range(ks, key, &meta, range, false, 0, -1);
    remove_records(ks, key, &mut meta, records)
}

/// ZREMRANGEBYRANK key start stop.
pub(crate) fn zremrangebyrank(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (start, end) = (tri!(int(&args[2])), tri!(int(&args[3])));
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Int(0) };
    let records = by_rank(ks, key, &meta, start, end, false);
    remove_records(ks, key, &mut meta, records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_as_strtod_reads_them() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"0e5"), Some(0.0));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1e400", b"1e-400", b"x", b"1.5.5"] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn score_slots_sort_as_the_scores_do() {
        let scores = [f64::NEG_INFINITY, -1e300, -2.5, -1e-300, 0.0, 1e-300, 1.0, 2.5, 1e300, f64::INFINITY];
        let slots: Vec<u64> = scores.iter().map(|s| coll::score_slot(*s)).collect();
        assert!(slots.windows(2).all(|w| w[0] < w[1]), "{slots:x?}");
        assert_eq!(coll::score_slot(-0.0), coll::score_slot(0.0));
    }
}
