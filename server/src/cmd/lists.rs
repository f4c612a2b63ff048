//! List commands (non-blocking): LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET
//! LINSERT LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, with Redis 7.0's replies and errors. A list is
//! a collection (`collection.rs`) whose elements are records at consecutive positions from its
//! meta record's `head` to `tail`: a push or pop at either end, LINDEX and LSET touch one
//! element; LRANGE costs what it returns; LINSERT and LREM rewrite the elements after the change
//! (LINSERT the shorter side).

use bytes::Bytes;
use ferrocask::{Expiry, RangeBuf};

use super::parse::{int, is, pop_count, strict_i64, syntax};
use crate::collection::{self as coll, open, open_or_create, save, Kind, Meta};
use crate::db::{Read, Write};
use crate::reply::{RangePart, RangeReply, Reply};

/// Which end of a list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

/// LEFT or RIGHT, as Redis's `getListPositionFromObjectOrReply` reads it.
fn end(arg: &[u8]) -> Result<End, Reply> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(syntax())
    }
}

/// Writes `value` at the `end` of the list (the caller [`save`]s).
fn push_one(ks: &mut dyn Write, key: &[u8], meta: &mut Meta, at: End, value: &[u8]) -> Result<(), Reply> {
    let position = match at {
        End::Left => {
            meta.head -= 1;
            meta.head
        }
        End::Right => {
            meta.tail += 1;
            meta.tail - 1
        }
    };
    meta.count += 1;
    ks.put_record(&coll::position_key(key, meta, position), value, Expiry::Never)
}

/// Removes and returns the element at the `end` of a non-empty list (the caller [`save`]s).
fn pop_one(ks: &mut dyn Write, key: &[u8], meta: &mut Meta, at: End) -> Result<Vec<u8>, Reply> {
    let position = match at {
        End::Left => meta.head,
        End::Right => meta.tail - 1,
    };
    let record = coll::position_key(key, meta, position);
    let value = ks.get(&record).map(|(v, _)| v).unwrap_or_default();
    ks.delete_record(&record)?;
    match at {
        End::Left => meta.head += 1,
        End::Right => meta.tail -= 1,
    }
    meta.count = meta.count.saturating_sub(1);
    Ok(value)
}

fn push(ks: &mut dyn Write, args: &[Bytes], at: End, only_existing: bool) -> Reply {
    let key = &args[1];
    let mut meta = if only_existing {
        match tri!(open(ks, key, Kind::List)) {
            Some(meta) => meta,
            None => return Reply::Int(0),
        }
    } else {
        tri!(open_or_create(ks, key, Kind::List))
    };
    for value in &args[2..] {
        tri!(push_one(ks, key, &mut meta, at, value));
    }
    tri!(save(ks, key, &mut meta));
    Reply::Int(meta.count as i64)
}

/// LPUSH key element...
pub(crate) fn lpush(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    push(ks, args, End::Left, false)
}

/// RPUSH key element...
pub(crate) fn rpush(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    push(ks, args, End::Right, false)
}

/// LPUSHX key element...
pub(crate) fn lpushx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    push(ks, args, End::Left, true)
}

/// RPUSHX key element...
pub(crate) fn rpushx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    push(ks, args, End::Right, true)
}

fn pop(ks: &mut dyn Write, args: &[Bytes], at: End, name: &str) -> Reply {
    if args.len() > 3 {
        return super::wrong_arity(name);
    }
    let wanted = match pop_count(args.get(2)) {
        Ok(wanted) => wanted,
        Err(e) => return e,
    };
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::List)) else {
        return if wanted.is_some() { Reply::NilArray } else { Reply::Nil };
    };
    let Some(n) = wanted else {
        let value = tri!(pop_one(ks, key, &mut meta, at));
        tri!(save(ks, key, &mut meta));
        return Reply::bulk(value);
    };
    if n == 0 {
        return Reply::Array(Vec::new());
    }
    let mut values = Vec::new();
    while values.len() as u64 != n && meta.count > 0 {
        values.push(Reply::bulk(tri!(pop_one(ks, key, &mut meta, at))));
    }
    tri!(save(ks, key, &mut meta));
    Reply::Array(values)
}

/// LPOP key [count].
pub(crate) fn lpop(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    pop(ks, args, End::Left, "lpop")
}

/// RPOP key [count].
pub(crate) fn rpop(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    pop(ks, args, End::Right, "rpop")
}

/// LLEN key: the meta record's count.
pub(crate) fn llen(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(open(ks, &args[1], Kind::List)).map_or(0, |m| m.count as i64))
}

/// An index from either end (negative: from the tail) as a 0-based index, if within the list.
fn index_in(index: i64, len: i64) -> Option<i64> {
    let index = if index < 0 { len.checked_add(index)? } else { index };
    (0..len).contains(&index).then_some(index)
}

/// LINDEX key index: one element's lookup.
pub(crate) fn lindex(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::List)) else { return Reply::Nil };
    let index = tri!(int(&args[2]));
    match index_in(index, meta.count as i64) {
        Some(i) => Reply::bulk_or_nil(coll::element(ks, &args[1], &meta, i)),
        None => Reply::Nil,
    }
}

/// Redis's clamping of a `start..=end` range (negative: from the tail) to a list of `len`;
/// `None` if empty.
fn clamp(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start, end.min(len - 1)))
}

/// The elements `from..=to` (0-based, within the list).
fn elements(ks: &dyn Read, key: &[u8], meta: &Meta, from: i64, to: i64) -> Vec<Vec<u8>> {
    let mut buf = RangeBuf::new();
    coll::elements_into(ks, key, meta, from, to, &mut buf);
    buf.iter().map(|(_, element)| element.to_vec()).collect()
}

/// LRANGE key start stop: one range walk over the elements returned.
pub(crate) fn lrange(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let (start, stop) = (tri!(int(&args[2])), tri!(int(&args[3])));
    let Some(meta) = tri!(open(ks, &args[1], Kind::List)) else { return Reply::Array(Vec::new()) };
    match clamp(start, stop, meta.count as i64) {
        Some((from, to)) => {
            let mut buf = RangeBuf::new();
            coll::elements_into(ks, &args[1], &meta, from, to, &mut buf);
            // Encoded from the walk's buffer: no `Bytes` per element.
            Reply::Range(RangeReply::new(buf, 0, RangePart::Values))
        }
        None => Reply::Array(Vec::new()),
    }
}

/// LSET key index element.
pub(crate) fn lset(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::List)) else { return Reply::error("ERR no such key") };
    let index = tri!(int(&args[2]));
    let Some(i) = index_in(index, meta.count as i64) else { return Reply::error("ERR index out of range") };
    tri!(ks.put_record(&coll::position_key(key, &meta, meta.head + i), &args[3], Expiry::Never));
    tri!(save(ks, key, &mut meta));
    Reply::OK
}

/// LTRIM key start stop: deletes what is outside the range, from both ends.
pub(crate) fn ltrim(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (start, stop) = (tri!(int(&args[2])), tri!(int(&args[3])));
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::List)) else { return Reply::OK };
    let len = meta.count as i64;
    let (left, right) = match clamp(start, stop, len) {
        Some((from, to)) => (from, len - to - 1),
        None => (len, 0),
    };
    for _ in 0..left {
        tri!(pop_one(ks, key, &mut meta, End::Left));
    }
    for _ in 0..right {
        tri!(pop_one(ks, key, &mut meta, End::Right));
    }
    if left + right > 0 {
        tri!(save(ks, key, &mut meta));
    }
    Reply::OK
}

/// Replaces the list's elements from index `from` on with `tail` (the ones before stay where
/// they are): what LREM and LINSERT rewrite.
fn rewrite_from(ks: &mut dyn Write, key: &[u8], meta: &mut Meta, from: i64, tail: &[Vec<u8>]) -> Result<(), Reply> {
    let old_len = meta.count as i64;
    for (k, value) in tail.iter().enumerate() {
        ks.put_record(&coll::position_key(key, meta, meta.head + from + k as i64), value, Expiry::Never)?;
    }
    let new_len = from + tail.len() as i64;
    for i in new_len..old_len {
        ks.delete_record(&coll::position_key(key, meta, meta.head + i))?;
    }
    meta.tail = meta.head + new_len;
    meta.count = new_len as u64;
    Ok(())
}

/// LREM key count element: reads the list, rewrites it from the first removed element on.
pub(crate) fn lrem(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let wanted = tri!(int(&args[2]));
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::List)) else { return Reply::Int(0) };
    let all = elements(ks, key, &meta, 0, meta.count as i64 - 1);
    let matches: Vec<usize> = all.iter().enumerate().filter(|(_, v)| v[..] == args[3][..]).map(|(i, _)| i).collect();
    let limit = if wanted == 0 { matches.len() } else { matches.len().min(wanted.unsigned_abs() as usize) };
    let removed: Vec<usize> =
        if wanted < 0 { matches[matches.len() - limit..].to_vec() } else { matches[..limit].to_vec() };
    let Some(&first) = removed.first() else { return Reply::Int(0) };
    let kept: Vec<Vec<u8>> =
        all.into_iter().enumerate().skip(first).filter(|(i, _)| !removed.contains(i)).map(|(_, v)| v).collect();
    tri!(rewrite_from(ks, key, &mut meta, first as i64, &kept));
    tri!(save(ks, key, &mut meta));
    Reply::Int(removed.len() as i64)
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 if the pivot is absent.
pub(crate) fn linsert(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return syntax();
    };
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::List)) else { return Reply::Int(0) };
    let len = meta.count as i64;
    let all = elements(ks, key, &meta, 0, len - 1);
    let Some(pivot) = all.iter().position(|v| v[..] == args[3][..]) else { return Reply::Int(-1) };
    let at = pivot as i64 + i64::from(after);
    if at < len - at {
        // The shorter side is the head's: move it one place left.
        meta.head -= 1;
        for (i, value) in all[..at as usize].iter().enumerate() {
            tri!(ks.put_record(&coll::position_key(key, &meta, meta.head + i as i64), value, Expiry::Never));
        }
        tri!(ks.put_record(&coll::position_key(key, &meta, meta.head + at), &args[4], Expiry::Never));
        meta.count += 1;
    } else {
        let tail: Vec<Vec<u8>> = std::iter::once(args[4].to_vec()).chain(all[at as usize..].iter().cloned()).collect();
        tri!(rewrite_from(ks, key, &mut meta, at, &tail));
    }
    tri!(save(ks, key, &mut meta));
    Reply::Int(meta.count as i64)
}

/// LPOS key element [RANK rank] [COUNT num] [MAXLEN len].
pub(crate) fn lpos(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let (mut rank, mut wanted, mut maxlen) = (1i64, None::<u64>, 0u64);
    let mut j = 3;
    while j < args.len() {
        let value = args.get(j + 1);
        match value {
            Some(v) if is(&args[j], "rank") => {
                rank = tri!(int(v));
                if rank == 0 {
                    return Reply::error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                         negative to start from the end of the list",
                    );
                }
            }
            Some(v) if is(&args[j], "count") => match strict_i64(v) {
                Some(n) if n >= 0 => wanted = Some(n as u64),
                _ => return Reply::error("ERR COUNT can't be negative"),
            },
            Some(v) if is(&args[j], "maxlen") => match strict_i64(v) {
                Some(n) if n >= 0 => maxlen = n as u64,
                _ => return Reply::error("ERR MAXLEN can't be negative"),
            },
            _ => return syntax(),
        }
        j += 2;
    }
    let Some(meta) = tri!(open(ks, &args[1], Kind::List)) else {
        return if wanted.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil };
    };
    let len = meta.count as i64;
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let mut found = Vec::new();
    let mut matches = 0u64;
    for scanned in 0..len {
        if maxlen != 0 && scanned as u64 >= maxlen {
            break;
        }
        let index = if from_tail { len - 1 - scanned } else { scanned };
        if coll::element(ks, &args[1], &meta, index).as_deref() != Some(&args[2][..]) {
            continue;
        }
        matches += 1;
        if matches >= rank {
            found.push(Reply::Int(index));
            match wanted {
                None => break,
                Some(n) if n != 0 && matches - rank + 1 >= n => break,
                Some(_) => {}
            }
        }
    }
    match wanted {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Nil),
    }
}

/// Pops from `src`'s `from` end and pushes on `dst`'s `to` end; nil if `src` is absent.
fn move_element(ks: &mut dyn Write, src: &[u8], dst: &[u8], from: End, to: End) -> Reply {
    let Some(mut source) = tri!(open(ks, src, Kind::List)) else { return Reply::Nil };
    tri!(open(ks, dst, Kind::List));
    let value = tri!(pop_one(ks, src, &mut source, from));
    tri!(save(ks, src, &mut source));
    let mut target = tri!(open_or_create(ks, dst, Kind::List));
    tri!(push_one(ks, dst, &mut target, to, &value));
    tri!(save(ks, dst, &mut target));
    Reply::bulk(value)
}

/// LMOVE src dst LEFT|RIGHT LEFT|RIGHT.
pub(crate) fn lmove(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (from, to) = (tri!(end(&args[3])), tri!(end(&args[4])));
    move_element(ks, &args[1], &args[2], from, to)
}

/// RPOPLPUSH src dst.
pub(crate) fn rpoplpush(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    move_element(ks, &args[1], &args[2], End::Right, End::Left)
}

/// LMPOP's arguments after its name (`args[0]`, not read): where the direction is, the
/// direction and the count, or the error Redis answers.
fn lmpop_args(args: &[Bytes]) -> Result<(usize, End, u64), Reply> {
    let numkeys = match strict_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    let Some(where_at) = numkeys.checked_add(2).filter(|&w| w < args.len() as u64) else { return Err(syntax()) };
    let where_at = where_at as usize;
    let at = end(&args[where_at])?;
    let mut wanted = None;
    let mut j = where_at + 1;
    while j < args.len() {
        match args.get(j + 1) {
            Some(v) if wanted.is_none() && is(&args[j], "count") => match strict_i64(v) {
                Some(n) if n >= 1 => wanted = Some(n as u64),
                _ => return Err(Reply::error("ERR count should be greater than 0")),
            },
            _ => return Err(syntax()),
        }
        j += 2;
    }
    Ok((where_at, at, wanted.unwrap_or(1)))
}

/// Checks LMPOP's arguments as Redis does before it looks at a key (BLMPOP: before its
/// timeout); `args[0]` is not read.
pub(crate) fn check_lmpop_args(args: &[Bytes]) -> Result<(), Reply> {
    lmpop_args(args).map(|_| ())
}

/// LMPOP numkeys key... LEFT|RIGHT [COUNT count]: pops from the first non-empty list.
pub(crate) fn lmpop(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (where_at, at, wanted) = tri!(lmpop_args(args));
    for key in &args[2..where_at] {
        let Some(mut meta) = tri!(open(ks, key, Kind::List)) else { continue };
        let mut values = Vec::new();
        while (values.len() as u64) < wanted && meta.count > 0 {
            values.push(Reply::bulk(tri!(pop_one(ks, key, &mut meta, at))));
        }
        tri!(save(ks, key, &mut meta));
        return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(values)]);
    }
    Reply::NilArray
}
