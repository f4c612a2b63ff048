//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HLEN HEXISTS HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN, with Redis 7.0's replies and errors. A hash is a
//! collection (`collection.rs`): one record per field, its value the field's; a write touches
//! the fields it names and the meta record, never the others.

use bytes::Bytes;

use super::float::LongDouble;
use super::keyspace::{empty_scan, parse_cursor, scan_options, scan_reply};
use super::parse::{count, int, is, random_count, strict_i64, syntax, too_many_random, RANDOM_REPLY_ELEMENTS_MAX};
use crate::collection::{self as coll, open, open_or_create, save, Kind, Member};
use crate::db::{Read, Write};
use crate::reply::Reply;

/// HSET key field value [field value ...]: the number of fields added.
pub(crate) fn hset(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_fields(ks, args, "hset").map_or_else(|e| e, count)
}

/// HMSET key field value [field value ...]: OK.
pub(crate) fn hmset(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    set_fields(ks, args, "hmset").map_or_else(|e| e, |_| Reply::OK)
}

fn set_fields(ks: &mut dyn Write, args: &[Bytes], name: &str) -> Result<usize, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(super::wrong_arity(name));
    }
    let key = &args[1];
    let mut meta = open_or_create(ks, key, Kind::Hash)?;
    let mut added = 0;
    for pair in args[2..].chunks(2) {
        added += usize::from(coll::put_member(ks, key, &mut meta, &pair[0], &pair[1])?);
    }
    save(ks, key, &mut meta)?;
    Ok(added)
}

/// HSETNX key field value.
pub(crate) fn hsetnx(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let mut meta = tri!(open_or_create(ks, key, Kind::Hash));
    if meta.count > 0 && coll::member_len(ks, key, &meta, &args[2]).is_some() {
        return Reply::Int(0);
    }
    tri!(coll::put_member(ks, key, &mut meta, &args[2], &args[3]));
    tri!(save(ks, key, &mut meta));
    Reply::Int(1)
}

/// HGET key field: one lookup of the meta record, one of the field's.
pub(crate) fn hget(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Nil };
    Reply::bulk_or_nil(coll::member(ks, &args[1], &meta, &args[2]))
}

/// HMGET key field...
pub(crate) fn hmget(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let meta = tri!(open(ks, &args[1], Kind::Hash));
    let value = |field: &Bytes| meta.as_ref().and_then(|m| coll::member(ks, &args[1], m, field));
    Reply::Array(args[2..].iter().map(|f| Reply::bulk_or_nil(value(f))).collect())
}

/// Each field with its value.
fn fields_and_values(ks: &dyn Read, members: Vec<Member>) -> Vec<(Reply, Reply)> {
    members
        .into_iter()
        .map(|m| {
            let value = ks.get(&m.record).map(|(v, _)| v).unwrap_or_default();
            (Reply::bulk(m.name().to_vec()), Reply::bulk(value))
        })
        .collect()
}

/// Every field of the hash with its value: one range walk.
fn all_fields(ks: &dyn Read, key: &[u8], meta: &coll::Meta) -> Vec<(Reply, Reply)> {
    coll::members_with_values(ks, key, meta)
        .into_iter()
        .map(|(m, value)| (Reply::bulk(m.name().to_vec()), Reply::bulk(value)))
        .collect()
}

/// HGETALL key: a map (RESP3), in field slot order.
pub(crate) fn hgetall(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Map(Vec::new()) };
    Reply::Map(all_fields(ks, &args[1], &meta))
}

/// HKEYS key.
pub(crate) fn hkeys(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Array(Vec::new()) };
    Reply::Array(coll::members(ks, &args[1], &meta).into_iter().map(|m| Reply::bulk(m.name().to_vec())).collect())
}

/// HVALS key.
pub(crate) fn hvals(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Array(Vec::new()) };
    Reply::Array(all_fields(ks, &args[1], &meta).into_iter().map(|(_, v)| v).collect())
}

/// HDEL key field...: the number of fields removed; the last one removes the key.
pub(crate) fn hdel(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::Hash)) else { return Reply::Int(0) };
    let mut removed = 0;
    for field in &args[2..] {
        removed += i64::from(tri!(coll::remove_member(ks, key, &mut meta, field)));
    }
    if removed > 0 {
        tri!(save(ks, key, &mut meta));
    }
    Reply::Int(removed)
}

/// HLEN key: the meta record's count.
pub(crate) fn hlen(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(open(ks, &args[1], Kind::Hash)).map_or(0, |m| m.count as i64))
}

/// HEXISTS key field: reads no value.
pub(crate) fn hexists(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Int(0) };
    Reply::Int(i64::from(coll::member_len(ks, &args[1], &meta, &args[2]).is_some()))
}

/// HSTRLEN key field: reads no value.
pub(crate) fn hstrlen(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return Reply::Int(0) };
    count(coll::member_len(ks, &args[1], &meta, &args[2]).unwrap_or(0))
}

/// HINCRBY key field n.
pub(crate) fn hincrby(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let by = tri!(int(&args[3]));
    let key = &args[1];
    let mut meta = tri!(open_or_create(ks, key, Kind::Hash));
    let current = match coll::member(ks, key, &meta, &args[2]) {
        Some(v) => match strict_i64(&v) {
            Some(n) => n,
            None => return Reply::error("ERR hash value is not an integer"),
        },
        None => 0,
    };
    let Some(new) = current.checked_add(by) else { return Reply::error("ERR increment or decrement would overflow") };
    tri!(coll::put_member(ks, key, &mut meta, &args[2], new.to_string().as_bytes()));
    tri!(save(ks, key, &mut meta));
    Reply::Int(new)
}

/// HINCRBYFLOAT key field x: Redis's long double arithmetic and printing (`float.rs`).
pub(crate) fn hincrbyfloat(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let by = match LongDouble::parse(&args[3]) {
        Some(LongDouble::Infinite { .. }) => return Reply::error("ERR value is NaN or Infinity"),
        Some(by) => by,
        None => return Reply::error("ERR value is not a valid float"),
    };
    let key = &args[1];
    let mut meta = tri!(open_or_create(ks, key, Kind::Hash));
    let current = match coll::member(ks, key, &meta, &args[2]) {
        Some(v) => match LongDouble::parse(&v) {
            Some(n) => n,
            None => return Reply::error("ERR hash value is not a float"),
        },
        None => LongDouble::zero(),
    };
    let Some(sum) = current.add(&by) else { return Reply::error("ERR increment would produce NaN or Infinity") };
    let text = sum.to_string();
    tri!(coll::put_member(ks, key, &mut meta, &args[2], text.as_bytes()));
    tri!(save(ks, key, &mut meta));
    Reply::bulk(text.into_bytes())
}

/// HRANDFIELD key [count [WITHVALUES]].
pub(crate) fn hrandfield(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(count_arg) = args.get(2) else {
        let Some(meta) = tri!(open(ks, key, Kind::Hash)) else { return Reply::Nil };
        let seed = coll::seed(ks.now_ms(), key, &meta, 0);
        return Reply::bulk_or_nil(coll::member_at(ks, key, &meta, seed).map(|m| m.name().to_vec()));
    };
    let n = tri!(random_count(count_arg));
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withvalues")) {
        return syntax();
    }
    let with_values = args.len() == 4;
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Reply::error("ERR value is out of range");
    }
    let Some(meta) = tri!(open(ks, key, Kind::Hash)) else { return Reply::Array(Vec::new()) };
    if n < 0 && n.unsigned_abs() > RANDOM_REPLY_ELEMENTS_MAX {
        return too_many_random();
    }
    let wanted = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let seed = coll::seed(ks.now_ms(), key, &meta, n as u64);
    let picked = coll::random_members(ks, key, &meta, wanted, n >= 0, seed);
    if with_values {
        Reply::Pairs(fields_and_values(ks, picked))
    } else {
        Reply::Array(picked.into_iter().map(|m| Reply::bulk(m.name().to_vec())).collect())
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT n]: the cursor is a field slot (see
/// `collection::scan_page`).
pub(crate) fn hscan(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let cursor = tri!(parse_cursor(&args[2]));
    let Some(meta) = tri!(open(ks, &args[1], Kind::Hash)) else { return empty_scan() };
    let o = tri!(scan_options(&args[3..], false));
    let (page, next) = coll::scan_page(ks, &args[1], &meta, cursor, o.count);
    let page: Vec<Member> = page.into_iter().filter(|m| o.matches(m.name())).collect();
    let items = fields_and_values(ks, page).into_iter().flat_map(|(f, v)| [f, v]).collect();
    scan_reply(next, items)
}
