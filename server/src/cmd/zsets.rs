//! Sorted-set commands: ZADD (NX XX GT LT CH INCR) ZINCRBY ZSCORE ZMSCORE ZCARD ZREM ZRANGE
//! (BYSCORE BYLEX REV LIMIT WITHSCORES) ZRANGESTORE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
//! ZREVRANGEBYLEX ZREVRANGE ZCOUNT ZLEXCOUNT ZRANK ZREVRANK ZPOPMIN ZPOPMAX ZREMRANGEBYSCORE
//! ZREMRANGEBYRANK ZREMRANGEBYLEX ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZRANDMEMBER ZSCAN, with
//! Redis 7.0's replies and errors (not the blocking BZPOPMIN and BZPOPMAX). A sorted set is a collection (`collection.rs`) with two records per member: the
//! member record (its value the score's bits), found by the member, and a score-index record
//! (score, then member, in the key), which ranges walk in order.

use std::ops::Bound;

use bytes::Bytes;
use ferrocask::{Expiry, RangeBuf};

use super::parse::{count, int, is, pop_count, syntax};
use crate::collection::{self as coll, open, open_or_create, save, Kind, Meta};
use crate::db::{Read, Write};
use crate::reply::{RangePart, RangeReply, Reply};

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
/// negative offset gives nothing, a negative limit no limit), each copied out of the walk's
/// buffer ([`in_range_into`]) for a caller that writes while it goes through them.
fn in_range(
    ks: &dyn Read,
    key: &[u8],
    meta: &Meta,
    range: ScoreRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<Vec<u8>> {
    let mut buf = RangeBuf::new();
    let skip = in_range_into(ks, key, meta, range, rev, offset, limit, &mut buf);
    buf.iter().skip(skip).map(|(record, _)| record.to_vec()).collect()
}

/// [`in_range`] into `buf` by one walk: the records to send are those from the returned index
/// on (the LIMIT offset's records are walked over, as Redis does).
#[allow(clippy::too_many_arguments)]
fn in_range_into(
    ks: &dyn Read,
    key: &[u8],
    meta: &Meta,
    range: ScoreRange,
    rev: bool,
    offset: i64,
    limit: i64,
    buf: &mut RangeBuf,
) -> usize {
    buf.clear();
    if offset < 0 || limit == 0 {
        return 0;
    }
    let Some((start, end)) = score_bounds(key, meta, range) else { return 0 };
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let take = if limit < 0 { usize::MAX } else { (offset as usize).saturating_add(limit as usize) };
    coll::score_records_into(ks, key, meta, Bound::Included(&start), end, rev, take, buf);
    offset as usize
}

/// [`by_rank`] into `buf` by one walk; the records to send are those from the returned index on.
fn by_rank_into(ks: &dyn Read, key: &[u8], meta: &Meta, start: i64, end: i64, rev: bool, buf: &mut RangeBuf) -> usize {
    buf.clear();
    let len = meta.count as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return 0;
    }
    let end = end.min(len - 1);
    coll::score_records_into(ks, key, meta, Bound::Unbounded, Bound::Unbounded, rev, end as usize + 1, buf);
    start as usize
}

/// The score-index records of ranks `start..=end` (Redis's clamping; ranks from the highest if
/// `rev`), each copied out of the walk's buffer ([`by_rank_into`]).
fn by_rank(ks: &dyn Read, key: &[u8], meta: &Meta, start: i64, end: i64, rev: bool) -> Vec<Vec<u8>> {
    let mut buf = RangeBuf::new();
    let skip = by_rank_into(ks, key, meta, start, end, rev, &mut buf);
    buf.iter().skip(skip).map(|(record, _)| record.to_vec()).collect()
}

/// The reply of a range: members, or members with their scores, encoded from the walk's
/// buffer (the records from `skip` on) with no `Bytes` per member.
fn range_reply(key: &[u8], buf: RangeBuf, skip: usize, with_scores: bool) -> Reply {
    let at = coll::score_slot_at(key);
    let part = if with_scores { RangePart::Scored { at } } else { RangePart::Members { at } };
    Reply::Range(RangeReply::new(buf, skip, part))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// One end of a lex range: `-`, `+`, or `[`/`(` and a member.
#[derive(Clone)]
enum LexEnd {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

fn parse_lex_end(arg: &Bytes) -> Option<LexEnd> {
    match arg.first()? {
        b'-' if arg.len() == 1 => Some(LexEnd::Min),
        b'+' if arg.len() == 1 => Some(LexEnd::Max),
        b'[' => Some(LexEnd::Inclusive(arg.slice(1..))),
        b'(' => Some(LexEnd::Exclusive(arg.slice(1..))),
        _ => None,
    }
}

fn parse_lex(min: &Bytes, max: &Bytes) -> Result<(LexEnd, LexEnd), Reply> {
    match (parse_lex_end(min), parse_lex_end(max)) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(Reply::error("ERR min or max not valid string range item")),
    }
}

/// Whether `member` is at or after the range's start.
fn lex_gte_min(member: &[u8], min: &LexEnd) -> bool {
    match min {
        LexEnd::Min => true,
        LexEnd::Max => false,
        LexEnd::Inclusive(m) => member >= &m[..],
        LexEnd::Exclusive(m) => member > &m[..],
    }
}

/// Whether `member` is at or before the range's end.
fn lex_lte_max(member: &[u8], max: &LexEnd) -> bool {
    match max {
        LexEnd::Min => false,
        LexEnd::Max => true,
        LexEnd::Inclusive(m) => member <= &m[..],
        LexEnd::Exclusive(m) => member < &m[..],
    }
}

/// Redis's `zslIsInLexRange`: false if the range is empty (min after max, or equal with an
/// exclusive end), the last member (in index order) is before min or the first after max.
/// `records` is the whole index, reversed if `rev`.
fn lex_range_may_hold(key: &[u8], records: &[Vec<u8>], min: &LexEnd, max: &LexEnd, rev: bool) -> bool {
    use std::cmp::Ordering;
    let rank = |end: &LexEnd| match end {
        LexEnd::Min => (0, None, true),
        LexEnd::Max => (2, None, true),
        LexEnd::Inclusive(m) => (1, Some(m.clone()), false),
        LexEnd::Exclusive(m) => (1, Some(m.clone()), true),
    };
    let ((min_rank, min_text, min_ex), (max_rank, max_text, max_ex)) = (rank(min), rank(max));
    let order = min_rank.cmp(&max_rank).then_with(|| min_text.cmp(&max_text));
    if order == Ordering::Greater || (order == Ordering::Equal && (min_ex || max_ex)) {
        return false;
    }
    let (head, tail) = if rev { (records.last(), records.first()) } else { (records.first(), records.last()) };
    let (Some(head), Some(tail)) = (head, tail) else { return false };
    lex_gte_min(coll::decode_score_record(key, tail).1, min) && lex_lte_max(coll::decode_score_record(key, head).1, max)
}

/// The score-index records of a lex range, as Redis walks it (which assumes every score is
/// equal): in index order (reversed for `rev`), from the first member inside the range's start
/// on, while members stay inside its end; then LIMIT. O(n): the index is ordered by score.
fn in_lex(
    ks: &dyn Read,
    key: &[u8],
    meta: &Meta,
    range: &(LexEnd, LexEnd),
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<Vec<u8>> {
    let (min, max) = range;
    if offset < 0 || limit == 0 {
        return Vec::new();
    }
    let all = coll::score_records(ks, key, meta, Bound::Unbounded, Bound::Unbounded, rev, usize::MAX);
    if !lex_range_may_hold(key, &all, min, max, rev) {
        return Vec::new();
    }
    let (first, last) = if rev { (max, min) } else { (min, max) };
    let inside_first = |m: &[u8]| if rev { lex_lte_max(m, first) } else { lex_gte_min(m, first) };
    let inside_last = |m: &[u8]| if rev { lex_gte_min(m, last) } else { lex_lte_max(m, last) };
    let name = |r: &Vec<u8>| coll::decode_score_record(key, r).1.to_vec();
    let take = if limit < 0 { usize::MAX } else { limit as usize };
    all.into_iter()
        .skip_while(|r| !inside_first(&name(r)))
        .take_while(|r| inside_last(&name(r)))
        .skip(offset as usize)
        .take(take)
        .collect()
}

/// Redis's `zrangeGenericCommand`: ZRANGE, ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX and
/// (`at` 2, the source after the destination) ZRANGESTORE's parsing and range: the records of
/// the range and whether scores are asked for.
fn zrange_records(
    ks: &dyn Read,
    args: &[Bytes],
    at: usize,
    store: bool,
    mut kind: RangeType,
    mut rev: Option<bool>,
) -> Result<(RangeBuf, usize, bool), Reply> {
    let (mut with_scores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = at + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j];
        if !store && is(opt, "withscores") {
            with_scores = true;
        } else if is(opt, "limit") && left >= 2 {
            offset = int(&args[j + 1])?;
            limit = int(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(opt, "rev") {
            rev = Some(true);
        } else if kind == RangeType::Auto && is(opt, "byscore") {
            kind = RangeType::Score;
        } else if kind == RangeType::Auto && is(opt, "bylex") {
            kind = RangeType::Lex;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = if kind == RangeType::Auto { RangeType::Rank } else { kind };
    if limit != -1 && kind == RangeType::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == RangeType::Lex {
        return Err(Reply::error("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (min, max) =
        if rev && kind != RangeType::Rank { (&args[at + 2], &args[at + 1]) } else { (&args[at + 1], &args[at + 2]) };
    let key = &args[at];
    let mut buf = RangeBuf::new();
    let skip = match kind {
        RangeType::Score => {
            let range = parse_range(min, max)?;
            let Some(meta) = open(ks, key, Kind::ZSet)? else { return Ok((buf, 0, with_scores)) };
            in_range_into(ks, key, &meta, range, rev, offset, limit, &mut buf)
        }
        RangeType::Lex => {
            let (min, max) = parse_lex(min, max)?;
            let Some(meta) = open(ks, key, Kind::ZSet)? else { return Ok((buf, 0, with_scores)) };
            // Not a walk of the index in range (the lex order is not the index's): copied.
            for record in in_lex(ks, key, &meta, &(min, max), rev, offset, limit) {
                buf.push(&record, b"");
            }
            0
        }
        _ => {
            let (start, end) = (int(min)?, int(max)?);
            let Some(meta) = open(ks, key, Kind::ZSet)? else { return Ok((buf, 0, with_scores)) };
            by_rank_into(ks, key, &meta, start, end, rev, &mut buf)
        }
    };
    Ok((buf, skip, with_scores))
}

fn zrange_generic(ks: &dyn Read, args: &[Bytes], kind: RangeType, rev: Option<bool>) -> Reply {
    let (buf, skip, with_scores) = tri!(zrange_records(ks, args, 1, false, kind, rev));
    range_reply(&args[1], buf, skip, with_scores)
}

/// ZRANGEBYLEX key min max [LIMIT offset count].
pub(crate) fn zrangebylex(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Lex, Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count].
pub(crate) fn zrevrangebylex(ks: &dyn Read, args: &[Bytes]) -> Reply {
    zrange_generic(ks, args, RangeType::Lex, Some(true))
}

/// ZLEXCOUNT key min max.
pub(crate) fn zlexcount(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let range = tri!(parse_lex(&args[2], &args[3]));
    let Some(meta) = tri!(open(ks, &args[1], Kind::ZSet)) else { return Reply::Int(0) };
    count(in_lex(ks, &args[1], &meta, &range, false, 0, -1).len())
}

/// ZREMRANGEBYLEX key min max.
pub(crate) fn zremrangebylex(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let range = tri!(parse_lex(&args[2], &args[3]));
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Int(0) };
    let records = in_lex(ks, key, &meta, &range, false, 0, -1);
    remove_records(ks, key, &mut meta, records)
}

/// Replaces whatever `dst` holds with a sorted set of `members` (deleted if empty); its size.
fn store_zset(ks: &mut dyn Write, dst: &[u8], members: &[(Vec<u8>, f64)]) -> Reply {
    tri!(ks.delete(dst));
    if members.is_empty() {
        return Reply::Int(0);
    }
    let mut meta = tri!(open_or_create(ks, dst, Kind::ZSet));
    for (member, score) in members {
        tri!(set_score(ks, dst, &mut meta, member, None, *score));
    }
    tri!(save(ks, dst, &mut meta));
    count(members.len())
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub(crate) fn zrangestore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (buf, skip, _) = tri!(zrange_records(ks, args, 2, true, RangeType::Auto, None));
    let members: Vec<(Vec<u8>, f64)> = buf
        .iter()
        .skip(skip)
        .map(|(r, _)| {
            let (score, member) = coll::decode_score_record(&args[2], r);
            (member.to_vec(), score)
        })
        .collect();
    store_zset(ks, &args[1], &members)
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
    let wanted = match pop_count(args.get(2)) {
        Ok(wanted) => wanted,
        Err(e) => return e,
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

/// Each member (a set's scored 1) of the set or sorted set at `key` with its score.
fn scored_members(ks: &dyn Read, key: &[u8], meta: &Meta) -> Vec<(Vec<u8>, f64)> {
    coll::members_with_values(ks, key, meta)
        .into_iter()
        .map(|(m, value)| {
            let score = match meta.kind {
                Kind::ZSet => value.try_into().map_or(0.0, |b: [u8; 8]| f64::from_bits(u64::from_be_bytes(b))),
                _ => 1.0,
            };
            (m.name().to_vec(), score)
        })
        .collect()
}

/// ZRANDMEMBER key [count [WITHSCORES]].
pub(crate) fn zrandmember(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(count_arg) = args.get(2) else {
        let Some(meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Nil };
        let seed = coll::seed(ks.now_ms(), key, &meta, 0);
        return Reply::bulk_or_nil(coll::member_at(ks, key, &meta, seed).map(|m| m.name().to_vec()));
    };
    let n = tri!(super::parse::random_count(count_arg));
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
        return syntax();
    }
    let with_scores = args.len() == 4;
    if with_scores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Reply::error("ERR value is out of range");
    }
    let Some(meta) = tri!(open(ks, key, Kind::ZSet)) else { return Reply::Array(Vec::new()) };
    if n < 0 && n.unsigned_abs() > super::parse::RANDOM_REPLY_ELEMENTS_MAX {
        return super::parse::too_many_random();
    }
    let wanted = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let seed = coll::seed(ks.now_ms(), key, &meta, n as u64);
    let picked = coll::random_members(ks, key, &meta, wanted, n >= 0, seed);
    if with_scores {
        let score = |m: &coll::Member| score_of(ks, key, &meta, m.name()).unwrap_or(0.0);
        Reply::Pairs(picked.iter().map(|m| (Reply::bulk(m.name().to_vec()), Reply::Double(score(m)))).collect())
    } else {
        Reply::Array(picked.into_iter().map(|m| Reply::bulk(m.name().to_vec())).collect())
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT n]: members and their scores (as bulk strings, in
/// RESP3 too, as Redis's scans answer), the cursor a member slot.
pub(crate) fn zscan(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let cursor = tri!(super::keyspace::parse_cursor(&args[2]));
    let Some(meta) = tri!(open(ks, &args[1], Kind::ZSet)) else { return super::keyspace::empty_scan() };
    let o = tri!(super::keyspace::scan_options(&args[3..], false));
    let (page, next) = coll::scan_page(ks, &args[1], &meta, cursor, o.count);
    let items = page
        .into_iter()
        .filter(|m| o.matches(m.name()))
        .flat_map(|m| {
            let score = score_of(ks, &args[1], &meta, m.name()).unwrap_or(0.0);
            [Reply::bulk(m.name().to_vec()), Reply::bulk(crate::reply::format_double(score).into_bytes())]
        })
        .collect();
    super::keyspace::scan_reply(next, items)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = a + b;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// Redis's `zunionInterDiffGenericCommand` for the STORE forms: dst numkeys key... [WEIGHTS
/// w...] [AGGREGATE SUM|MIN|MAX] (no options for a difference); sets count as scored 1.
fn combine_store(ks: &mut dyn Write, args: &[Bytes], op: SetOp, name: &str) -> Reply {
    let numkeys = tri!(int(&args[2]));
    if numkeys < 1 {
        return Reply::error(format!("ERR at least 1 input key is needed for '{name}' command"));
    }
    if numkeys as u64 > (args.len() - 3) as u64 {
        return syntax();
    }
    let keys = &args[3..3 + numkeys as usize];
    let mut sources = Vec::with_capacity(keys.len());
    for key in keys {
        match coll::find(ks, key) {
            None => sources.push(None),
            Some(coll::Found::Collection(meta)) if matches!(meta.kind, Kind::ZSet | Kind::Set) => {
                sources.push(Some(meta))
            }
            Some(_) => return coll::wrongtype(),
        }
    }
    let mut weights = vec![1.0; keys.len()];
    let mut aggregate = Aggregate::Sum;
    let mut j = 3 + keys.len();
    while j < args.len() {
        let remaining = args.len() - j;
        if op != SetOp::Diff && remaining > keys.len() && is(&args[j], "weights") {
            for (i, weight) in weights.iter_mut().enumerate() {
                match parse_score(&args[j + 1 + i]) {
                    Some(w) => *weight = w,
                    None => return Reply::error("ERR weight value is not a float"),
                }
            }
            j += 1 + keys.len();
        } else if op != SetOp::Diff && remaining >= 2 && is(&args[j], "aggregate") {
            aggregate = match () {
                _ if is(&args[j + 1], "sum") => Aggregate::Sum,
                _ if is(&args[j + 1], "min") => Aggregate::Min,
                _ if is(&args[j + 1], "max") => Aggregate::Max,
                _ => return syntax(),
            };
            j += 2;
        } else {
            return syntax();
        }
    }
    let weighted = |x: f64, w: f64| {
        let v = x * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    match op {
        SetOp::Union => {
            let mut at = std::collections::HashMap::new();
            for ((key, meta), w) in keys.iter().zip(&sources).zip(&weights) {
                let Some(meta) = meta else { continue };
                for (member, score) in scored_members(ks, key, meta) {
                    let score = weighted(score, *w);
                    match at.get(&member) {
                        Some(&i) => {
                            let (_, s): &mut (Vec<u8>, f64) = &mut result[i];
                            *s = aggregate.apply(*s, score);
                        }
                        None => {
                            at.insert(member.clone(), result.len());
                            result.push((member, score));
                        }
                    }
                }
            }
        }
        SetOp::Inter => {
            if sources.iter().all(Option::is_some) {
                // Redis walks the smallest input first (weights follow their inputs).
                let mut order: Vec<usize> = (0..keys.len()).collect();
                order.sort_by_key(|&i| sources[i].map_or(0, |m| m.count));
                let first = order[0];
                let lookups: Vec<std::collections::HashMap<Vec<u8>, f64>> = order[1..]
                    .iter()
                    .map(|&i| scored_members(ks, &keys[i], &sources[i].expect("all present")).into_iter().collect())
                    .collect();
                for (member, score) in scored_members(ks, &keys[first], &sources[first].expect("present")) {
                    let mut total = weighted(score, weights[first]);
                    let mut everywhere = true;
                    for (lookup, &i) in lookups.iter().zip(&order[1..]) {
                        match lookup.get(&member) {
                            Some(&s) => total = aggregate.apply(total, weighted(s, weights[i])),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if everywhere {
                        result.push((member, total));
                    }
                }
            }
        }
        SetOp::Diff => {
            if let Some(first) = sources[0] {
                let others: Vec<std::collections::HashSet<Vec<u8>>> = keys[1..]
                    .iter()
                    .zip(&sources[1..])
                    .filter_map(|(k, m)| m.map(|m| scored_members(ks, k, &m).into_iter().map(|(n, _)| n).collect()))
                    .collect();
                for (member, score) in scored_members(ks, &keys[0], &first) {
                    if !others.iter().any(|o| o.contains(&member)) {
                        result.push((member, score));
                    }
                }
            }
        }
    }
    store_zset(ks, &args[1], &result)
}

/// ZUNIONSTORE dst numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX].
pub(crate) fn zunionstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    combine_store(ks, args, SetOp::Union, "zunionstore")
}

/// ZINTERSTORE dst numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX].
pub(crate) fn zinterstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    combine_store(ks, args, SetOp::Inter, "zinterstore")
}

/// ZDIFFSTORE dst numkeys key...
pub(crate) fn zdiffstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    combine_store(ks, args, SetOp::Diff, "zdiffstore")
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
