//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER
//! SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN, with Redis 7.0's replies and
//! errors. A set is a collection (`collection.rs`) whose member records hold empty values.

use std::collections::HashSet;

use bytes::Bytes;

use super::keyspace::{empty_scan, parse_cursor, scan_options, scan_reply};
use super::parse::{
    count, is, pop_count, random_count, strict_i64, syntax, too_many_random, RANDOM_REPLY_ELEMENTS_MAX,
};
use crate::collection::{self as coll, open, open_or_create, save, Kind, Meta};
use crate::db::{Read, Write};
use crate::reply::Reply;

fn names(members: Vec<coll::Member>) -> Vec<Reply> {
    members.into_iter().map(|m| Reply::bulk(m.name().to_vec())).collect()
}

/// SADD key member...: the number added. A SADD that adds nothing writes nothing (as Redis, it
/// does not touch the key for WATCH).
pub(crate) fn sadd(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let mut meta = tri!(open_or_create(ks, key, Kind::Set));
    let mut added = 0;
    for member in &args[2..] {
        added += i64::from(tri!(coll::put_member(ks, key, &mut meta, member, b"")));
    }
    if added > 0 {
        tri!(save(ks, key, &mut meta));
    }
    Reply::Int(added)
}

/// SREM key member...
pub(crate) fn srem(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let Some(mut meta) = tri!(open(ks, key, Kind::Set)) else { return Reply::Int(0) };
    let mut removed = 0;
    for member in &args[2..] {
        removed += i64::from(tri!(coll::remove_member(ks, key, &mut meta, member)));
    }
    if removed > 0 {
        tri!(save(ks, key, &mut meta));
    }
    Reply::Int(removed)
}

/// SMEMBERS key: a set (RESP3), in member slot order.
pub(crate) fn smembers(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Set)) else { return Reply::Set(Vec::new()) };
    Reply::Set(names(coll::members(ks, &args[1], &meta)))
}

/// SISMEMBER key member: one lookup of the member's record.
pub(crate) fn sismember(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let Some(meta) = tri!(open(ks, &args[1], Kind::Set)) else { return Reply::Int(0) };
    Reply::Int(i64::from(coll::member_len(ks, &args[1], &meta, &args[2]).is_some()))
}

/// SMISMEMBER key member...
pub(crate) fn smismember(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let meta = tri!(open(ks, &args[1], Kind::Set));
    let has = |m: &Bytes| meta.as_ref().is_some_and(|meta| coll::member_len(ks, &args[1], meta, m).is_some());
    Reply::Array(args[2..].iter().map(|m| Reply::Int(i64::from(has(m)))).collect())
}

/// SCARD key: the meta record's count.
pub(crate) fn scard(ks: &dyn Read, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(open(ks, &args[1], Kind::Set)).map_or(0, |m| m.count as i64))
}

/// SPOP key [count]. The members are drawn from the transaction's time, the key and the set's
/// stamp (`collection::seed`), so every replica applying the entry pops the same ones.
pub(crate) fn spop(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if args.len() > 3 {
        return syntax();
    }
    let wanted = match pop_count(args.get(2)) {
        Ok(wanted) => wanted,
        Err(e) => return e,
    };
    let Some(mut meta) = tri!(open(ks, key, Kind::Set)) else {
        return if wanted.is_some() { Reply::Set(Vec::new()) } else { Reply::Nil };
    };
    let seed = coll::seed(ks.now_ms(), key, &meta, wanted.unwrap_or(u64::MAX));
    let picked = match wanted {
        None => coll::member_at(ks, key, &meta, seed).into_iter().collect(),
        Some(n) => coll::random_members(ks, key, &meta, usize::try_from(n).unwrap_or(usize::MAX), true, seed),
    };
    for member in &picked {
        tri!(coll::remove_member(ks, key, &mut meta, member.name()));
    }
    if !picked.is_empty() {
        tri!(save(ks, key, &mut meta));
    }
    match wanted {
        None => Reply::bulk_or_nil(picked.into_iter().next().map(|m| m.name().to_vec())),
        Some(_) => Reply::Set(names(picked)),
    }
}

/// SRANDMEMBER key [count].
pub(crate) fn srandmember(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let key = &args[1];
    if args.len() > 3 {
        return syntax();
    }
    let Some(count_arg) = args.get(2) else {
        let Some(meta) = tri!(open(ks, key, Kind::Set)) else { return Reply::Nil };
        let seed = coll::seed(ks.now_ms(), key, &meta, 0);
        return Reply::bulk_or_nil(coll::member_at(ks, key, &meta, seed).map(|m| m.name().to_vec()));
    };
    let n = tri!(random_count(count_arg));
    let Some(meta) = tri!(open(ks, key, Kind::Set)) else { return Reply::Array(Vec::new()) };
    if n < 0 && n.unsigned_abs() > RANDOM_REPLY_ELEMENTS_MAX {
        return too_many_random();
    }
    let wanted = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let seed = coll::seed(ks.now_ms(), key, &meta, n as u64);
    Reply::Array(names(coll::random_members(ks, key, &meta, wanted, n >= 0, seed)))
}

/// SMOVE src dst member, checked in Redis's order: a missing source is 0 before any type.
pub(crate) fn smove(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let Some(mut from) = tri!(open(ks, src, Kind::Set)) else { return Reply::Int(0) };
    let to = tri!(open(ks, dst, Kind::Set));
    if src == dst {
        return Reply::Int(i64::from(coll::member_len(ks, src, &from, member).is_some()));
    }
    if !tri!(coll::remove_member(ks, src, &mut from, member)) {
        return Reply::Int(0);
    }
    tri!(save(ks, src, &mut from));
    let mut to = match to {
        Some(to) => to,
        None => tri!(open_or_create(ks, dst, Kind::Set)),
    };
    if tri!(coll::put_member(ks, dst, &mut to, member, b"")) {
        tri!(save(ks, dst, &mut to));
    }
    Reply::Int(1)
}

/// The sets named by `keys`: WRONGTYPE if any holds another type (every key is checked, as
/// Redis 7.0 does), `None` for a missing one.
fn sets(ks: &dyn Read, keys: &[Bytes]) -> Result<Vec<Option<Meta>>, Reply> {
    keys.iter().map(|k| open(ks, k, Kind::Set)).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The members of the intersection, union or difference of the sets at `keys`, at most `limit`
/// (an intersection stops there: SINTERCARD's LIMIT). Costs: an intersection enumerates the
/// smallest set and looks each member up in the others; a union enumerates them all; a
/// difference enumerates the first and looks each member up in the others.
fn combine(ks: &dyn Read, keys: &[Bytes], op: Op, limit: usize) -> Result<Vec<Vec<u8>>, Reply> {
    let metas = sets(ks, keys)?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    match op {
        Op::Inter => {
            let Some(all) = metas.iter().copied().collect::<Option<Vec<Meta>>>() else { return Ok(out) };
            let smallest = (0..all.len()).min_by_key(|&i| all[i].count).expect("at least one key");
            for member in coll::members(ks, &keys[smallest], &all[smallest]) {
                if out.len() >= limit {
                    break;
                }
                let everywhere = (0..all.len())
                    .all(|i| i == smallest || coll::member_len(ks, &keys[i], &all[i], member.name()).is_some());
                if everywhere {
                    out.push(member.name().to_vec());
                }
            }
        }
        Op::Union => {
            let mut seen = HashSet::new();
            for (key, meta) in keys.iter().zip(&metas) {
                let Some(meta) = meta else { continue };
                for member in coll::members(ks, key, meta) {
                    if seen.insert(member.name().to_vec()) {
                        out.push(member.name().to_vec());
                    }
                }
            }
        }
        Op::Diff => {
            let Some(first) = metas[0] else { return Ok(out) };
            for member in coll::members(ks, &keys[0], &first) {
                let elsewhere = keys[1..]
                    .iter()
                    .zip(&metas[1..])
                    .any(|(k, m)| m.as_ref().is_some_and(|m| coll::member_len(ks, k, m, member.name()).is_some()));
                if !elsewhere {
                    out.push(member.name().to_vec());
                }
            }
        }
    }
    Ok(out)
}

fn reply_set(ks: &dyn Read, keys: &[Bytes], op: Op) -> Reply {
    let members = tri!(combine(ks, keys, op, usize::MAX));
    Reply::Set(members.into_iter().map(Reply::bulk).collect())
}

/// SINTER key...
pub(crate) fn sinter(ks: &dyn Read, args: &[Bytes]) -> Reply {
    reply_set(ks, &args[1..], Op::Inter)
}

/// SUNION key...
pub(crate) fn sunion(ks: &dyn Read, args: &[Bytes]) -> Reply {
    reply_set(ks, &args[1..], Op::Union)
}

/// SDIFF key...
pub(crate) fn sdiff(ks: &dyn Read, args: &[Bytes]) -> Reply {
    reply_set(ks, &args[1..], Op::Diff)
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE dst key...: the result replaces whatever `dst` held (it
/// is deleted if the result is empty); its size is the reply.
fn store(ks: &mut dyn Write, args: &[Bytes], op: Op) -> Reply {
    let dst = &args[1];
    let members = tri!(combine(ks, &args[2..], op, usize::MAX));
    tri!(ks.delete(dst));
    if members.is_empty() {
        return Reply::Int(0);
    }
    let mut meta = tri!(open_or_create(ks, dst, Kind::Set));
    for member in &members {
        tri!(coll::put_member(ks, dst, &mut meta, member, b""));
    }
    tri!(save(ks, dst, &mut meta));
    count(members.len())
}

/// SINTERSTORE dst key...
pub(crate) fn sinterstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    store(ks, args, Op::Inter)
}

/// SUNIONSTORE dst key...
pub(crate) fn sunionstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    store(ks, args, Op::Union)
}

/// SDIFFSTORE dst key...
pub(crate) fn sdiffstore(ks: &mut dyn Write, args: &[Bytes]) -> Reply {
    store(ks, args, Op::Diff)
}

/// SINTERCARD numkeys key... [LIMIT limit].
pub(crate) fn sintercard(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let numkeys = match strict_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Reply::error("ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() - 2) as u64 {
        return Reply::error("ERR Number of keys can't be greater than number of args");
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut j = keys_end;
    while j < args.len() {
        if is(&args[j], "limit") && j + 1 < args.len() {
            match strict_i64(&args[j + 1]) {
                Some(n) if n >= 0 => limit = n as u64,
                _ => return Reply::error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return syntax();
        }
    }
    let limit = if limit == 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
    count(tri!(combine(ks, &args[2..keys_end], Op::Inter, limit)).len())
}

/// SSCAN key cursor [MATCH pattern] [COUNT n]: the cursor is a member slot.
pub(crate) fn sscan(ks: &dyn Read, args: &[Bytes]) -> Reply {
    let cursor = tri!(parse_cursor(&args[2]));
    let Some(meta) = tri!(open(ks, &args[1], Kind::Set)) else { return empty_scan() };
    let o = tri!(scan_options(&args[3..], false));
    let (page, next) = coll::scan_page(ks, &args[1], &meta, cursor, o.count);
    scan_reply(next, names(page.into_iter().filter(|m| o.matches(m.name())).collect()))
}
