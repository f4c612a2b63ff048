//! The collection layer: how hashes, sets, lists and sorted sets live in the
//! store, one record per member, beside the strings, which stay as they were (the raw value at
//! the user's key). Every collection command is written against the functions here, over the
//! same [`Read`] and [`Write`] views as the strings, so it runs in one store transaction, is
//! atomic ([`TxnView::run`](crate::db::TxnView::run)), joins an EXEC's batch and replicates in the
//! cluster like any other command.
//!
//! The records (DESIGN.md, "Collections: hashes, sets, lists and sorted sets", draws them byte by byte), all under [`INTERNAL`], a
//! prefix no user key may start with:
//!
//! - **meta** `\xff\xfd m` + key → [`META_BYTES`]: type, generation, member count, stamp (u64
//!   big-endian each but the type byte). The collection's TTL is this record's expiry; a user
//!   key is a collection iff its meta record is live.
//! - **member** `\xff\xfd e` + len(key) as u32 BE + key + generation + slot + member → a hash
//!   field's value, or empty for a set. The slot is the member's [`slot`] (a fixed-key SipHash):
//!   a collection's members are one contiguous key range, in slot order, so HSCAN's cursor is a
//!   slot (exact resumption) and a random member is the first at or after a random slot.
//! - **list element** `\xff\xfd e` + len(key) + key + generation + position → the element: the
//!   position (an i64, its sign bit flipped so positions sort as bytes) stands where a member's
//!   slot stands, and the member is empty; the meta record of a list adds its head and tail.
//! - **score index** `\xff\xfd s` + len(key) + key + generation + score (order-preserving) +
//!   member → empty: a sorted set's members in (score, member) order; its member records hold
//!   the scores.
//! - **generation counter** `\xff\xfd g` → u64 BE: bumped by every collection created, so a new
//!   incarnation of a key never sees an older one's members (DEL, overwrite and expiry of a
//!   collection cost O(1) in its meta record; members left behind are garbage).
//!
//! Invariants: a user key is a string (a record at the key) or a collection (a live meta record)
//! or absent, never two of these: [`Write::put`] and [`Write::delete`] drop a collection at the
//! key before a string is written, and a collection is only created where no string is live. A
//! live meta record's count is the number of member records under its generation, and is never
//! 0 (the last member removed deletes the meta record).

use std::hash::Hasher;
use std::ops::Bound;

use ferrocask::{Expiry, KeyMeta, RangeBuf};

use crate::db::{Entry, Read, Write};
use crate::reply::Reply;

/// The prefix of every record the collection layer keeps: no user key may start with it.
pub const INTERNAL: &[u8] = b"\xff\xfd";
/// Meta records: [`INTERNAL`] + `m` + user key.
pub const META_PREFIX: &[u8] = b"\xff\xfdm";
/// Member records: [`INTERNAL`] + `e` + len(key) + key + generation + slot + member.
pub const MEMBER_PREFIX: &[u8] = b"\xff\xfde";
/// The generation counter.
pub const GENERATION_KEY: &[u8] = b"\xff\xfdg";
/// A sorted set's score index: [`INTERNAL`] + `s` + len(key) + key + generation + score (order
/// preserving) + member.
pub const SCORE_PREFIX: &[u8] = b"\xff\xfds";
/// The prefixes the store must keep ordered (`Options::ordered_prefix`): members and scores are
/// enumerated in ranges, meta records counted.
pub const ORDERED_PREFIXES: [&[u8]; 3] = [MEMBER_PREFIX, META_PREFIX, SCORE_PREFIX];

/// A meta record's value: type (1 byte), generation, count, stamp (8 bytes big-endian each).
pub(crate) const META_BYTES: usize = 1 + 8 + 8 + 8;
/// A list's meta record: [`META_BYTES`], then its head and tail positions (i64 big-endian).
pub(crate) const LIST_META_BYTES: usize = META_BYTES + 8 + 8;
const GENERATION_AT: usize = 1;
const COUNT_AT: usize = 9;
const STAMP_AT: usize = 17;
const HEAD_AT: usize = 25;
const TAIL_AT: usize = 33;
/// A member key's bytes besides the user key and the member: prefix, length, generation, slot.
pub(crate) const MEMBER_KEY_OVERHEAD_BYTES: usize = 3 + 4 + 8 + 8;

/// How many members DEL (or an overwrite) deletes along with the meta record, in the same
/// transaction; a larger collection's members are left as orphans (invisible: their generation
/// is no live meta record's) for a sweeper to reclaim. 1,024 members of 64 bytes are about
/// 120 KB of tombstones, far below one batch.
pub(crate) const INLINE_DROP_MEMBERS_MAX: u64 = 1024;

/// Redis's reply to a command on a key of another type.
pub(crate) const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// The reply of a command on a key of another type.
pub(crate) fn wrongtype() -> Reply {
    Reply::error(WRONGTYPE)
}

/// A collection's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Hash,
    Set,
    List,
    ZSet,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Hash => b'h',
            Kind::Set => b's',
            Kind::List => b'l',
            Kind::ZSet => b'z',
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            b'h' => Some(Kind::Hash),
            b's' => Some(Kind::Set),
            b'l' => Some(Kind::List),
            b'z' => Some(Kind::ZSet),
            _ => None,
        }
    }

    /// TYPE's answer.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::List => "list",
            Kind::ZSet => "zset",
        }
    }
}

/// A live collection's meta record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) kind: Kind,
    pub(crate) generation: u64,
    pub(crate) count: u64,
    /// Bumped by every write to the collection, so that the meta record's value (the cluster's
    /// WATCH fingerprint) and its version (the single node's) change with every write, even one
    /// that keeps the count (HSET of an existing field).
    pub(crate) stamp: u64,
    pub(crate) expires_ms: Option<u64>,
    /// A list's first element's position (see [`position_key`]); 0 for other types.
    pub(crate) head: i64,
    /// A list's position after its last element (`tail - head == count`); 0 for other types.
    pub(crate) tail: i64,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; if self.kind == Kind::List { LIST_META_BYTES } else { META_BYTES }];
        out[0] = self.kind.byte();
        out[GENERATION_AT..COUNT_AT].copy_from_slice(&self.generation.to_be_bytes());
        out[COUNT_AT..STAMP_AT].copy_from_slice(&self.count.to_be_bytes());
        out[STAMP_AT..HEAD_AT].copy_from_slice(&self.stamp.to_be_bytes());
        if self.kind == Kind::List {
            out[HEAD_AT..TAIL_AT].copy_from_slice(&self.head.to_be_bytes());
            out[TAIL_AT..].copy_from_slice(&self.tail.to_be_bytes());
        }
        out
    }

    fn decode(value: &[u8], expires_ms: Option<u64>) -> Option<Meta> {
        let kind = Kind::from_byte(*value.first()?)?;
        let want = if kind == Kind::List { LIST_META_BYTES } else { META_BYTES };
        if value.len() != want {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(value[at..at + 8].try_into().expect("8 bytes"));
        let (head, tail) = if kind == Kind::List { (u64_at(HEAD_AT) as i64, u64_at(TAIL_AT) as i64) } else { (0, 0) };
        Some(Meta {
            kind,
            generation: u64_at(GENERATION_AT),
            count: u64_at(COUNT_AT),
            stamp: u64_at(STAMP_AT),
            expires_ms,
            head,
            tail,
        })
    }

    fn expiry(&self) -> Expiry {
        self.expires_ms.map_or(Expiry::Never, Expiry::At)
    }
}

/// What a user key holds.
pub(crate) enum Found {
    String(KeyMeta),
    Collection(Meta),
}

impl Found {
    /// TYPE's answer.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Found::String(_) => "string",
            Found::Collection(meta) => meta.kind.name(),
        }
    }

    pub(crate) fn expires_ms(&self) -> Option<u64> {
        match self {
            Found::String(meta) => meta.expires_ms,
            Found::Collection(meta) => meta.expires_ms,
        }
    }
}

/// The meta record's key of user key `key`.
pub(crate) fn meta_key(key: &[u8]) -> Vec<u8> {
    [META_PREFIX, key].concat()
}

/// The common prefix of the member records of `key`'s incarnation `generation`.
fn members_prefix(key: &[u8], generation: u64) -> Vec<u8> {
    records_prefix(MEMBER_PREFIX, key, generation)
}

/// The common prefix of the records under `prefix` (members or scores) of `key`'s incarnation
/// `generation`.
fn records_prefix(prefix: &[u8], key: &[u8], generation: u64) -> Vec<u8> {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(MEMBER_KEY_OVERHEAD_BYTES + key.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&generation.to_be_bytes());
    out
}

/// A member's slot: SipHash-2-4 with fixed keys, so every build and every replica agree (it is
/// part of the on-disk format). Never 0, so that a cursor of 0 means "start" and "done".
pub(crate) fn slot(member: &[u8]) -> u64 {
    #[allow(deprecated, reason = "SipHasher's fixed keys are the point: the slot is on disk")]
    let mut h = std::hash::SipHasher::new_with_keys(0x6665_7272_6f63_6173, 0x6b2d_636f_6c6c_6563);
    h.write(member);
    h.finish().max(1)
}

/// A collection member's record key.
pub(crate) fn member_key(key: &[u8], generation: u64, member: &[u8]) -> Vec<u8> {
    let mut out = members_prefix(key, generation);
    out.extend_from_slice(&slot(member).to_be_bytes());
    out.extend_from_slice(member);
    out
}

/// The user key a store key shows as in a listing: itself, a meta record's user key, or `None`
/// for the collection layer's other records.
pub(crate) fn user_key(raw: &[u8]) -> Option<&[u8]> {
    match raw.strip_prefix(INTERNAL) {
        None => Some(raw),
        Some(_) => raw.strip_prefix(META_PREFIX),
    }
}

/// A listing of store keys as user keys (see [`user_key`]).
pub(crate) fn user_keys(raw: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    raw.into_iter()
        .filter_map(|k| match user_key(&k) {
            Some(user) if user.len() == k.len() => Some(k),
            Some(user) => Some(user.to_vec()),
            None => None,
        })
        .collect()
}

/// The live collection at `key`, if any (one lookup of its meta record; a string at the key is
/// not looked at).
pub(crate) fn collection<R: Read + ?Sized>(ks: &R, key: &[u8]) -> Option<Meta> {
    let (value, expires_ms) = ks.get(&meta_key(key))?;
    Meta::decode(&value, expires_ms)
}

/// What `key` holds: a string (its record's header), a collection, or nothing.
pub(crate) fn find<R: Read + ?Sized>(ks: &R, key: &[u8]) -> Option<Found> {
    match ks.meta(key) {
        Some(meta) => Some(Found::String(meta)),
        None => collection(ks, key).map(Found::Collection),
    }
}

/// The string at `key` (value and expiry), `None` if absent, WRONGTYPE if a collection: what
/// every string command reads. A string found costs what `get` costs; only a miss looks for a
/// collection (one more lookup).
pub(crate) fn string<R: Read + ?Sized>(ks: &R, key: &[u8]) -> Result<Option<Entry>, Reply> {
    match ks.get(key) {
        Some(entry) => Ok(Some(entry)),
        None if collection(ks, key).is_some() => Err(wrongtype()),
        None => Ok(None),
    }
}

/// The collection of `kind` at `key`: `None` if the key is absent, WRONGTYPE if it holds
/// something else.
pub(crate) fn open<R: Read + ?Sized>(ks: &R, key: &[u8], kind: Kind) -> Result<Option<Meta>, Reply> {
    match collection(ks, key) {
        Some(meta) if meta.kind == kind => Ok(Some(meta)),
        Some(_) => Err(wrongtype()),
        None if ks.meta(key).is_some() => Err(wrongtype()),
        None => Ok(None),
    }
}

/// What a single node's WATCH keeps of `key`: the version of the record that says what it holds
/// (the string, or the collection's meta record, which every write to the collection rewrites).
pub(crate) fn watch_version<R: Read + ?Sized>(ks: &R, key: &[u8]) -> Option<u64> {
    match ks.meta(key) {
        Some(meta) => Some(meta.version),
        None => ks.meta(&meta_key(key)).map(|meta| meta.version),
    }
}

/// The collection of `kind` at `key` for a write: the live one, or a new empty one with a fresh
/// generation (written once [`save`] is called with members in it); WRONGTYPE if the key holds
/// something else.
pub(crate) fn open_or_create<W: Write + ?Sized>(ks: &mut W, key: &[u8], kind: Kind) -> Result<Meta, Reply> {
    if let Some(meta) = open(ks, key, kind)? {
        return Ok(meta);
    }
    if key.is_empty() {
        // As for strings: the store cannot hold an empty key, so no collection has one.
        return Err(crate::db::store_error(ferrocask::Error::EmptyKey));
    }
    let generation = ks.get(GENERATION_KEY).and_then(|(v, _)| v.try_into().ok()).map_or(0, u64::from_be_bytes) + 1;
    ks.put_record(GENERATION_KEY, &generation.to_be_bytes(), Expiry::Never)?;
    Ok(Meta { kind, generation, count: 0, stamp: 0, expires_ms: None, head: 0, tail: 0 })
}

/// Writes the collection's meta record after its members changed (bumping its stamp), or deletes
/// it if no member is left.
pub(crate) fn save<W: Write + ?Sized>(ks: &mut W, key: &[u8], meta: &mut Meta) -> Result<(), Reply> {
    if meta.count == 0 {
        return ks.delete_record(&meta_key(key));
    }
    meta.stamp = meta.stamp.wrapping_add(1);
    ks.put_record(&meta_key(key), &meta.encode(), meta.expiry())
}

/// Rewrites the meta record with a new expiry (EXPIRE, PERSIST).
pub(crate) fn set_expiry<W: Write + ?Sized>(
    ks: &mut W,
    key: &[u8],
    meta: &mut Meta,
    expires_ms: Option<u64>,
) -> Result<(), Reply> {
    meta.expires_ms = expires_ms;
    save(ks, key, meta)
}

/// A member's value (a hash field's; empty for a set member), `None` if absent.
pub(crate) fn member<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta, member: &[u8]) -> Option<Vec<u8>> {
    ks.get(&member_key(key, meta.generation, member)).map(|(v, _)| v)
}

/// A member's value length, read without the value, `None` if absent.
pub(crate) fn member_len<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta, member: &[u8]) -> Option<usize> {
    ks.meta(&member_key(key, meta.generation, member)).map(|m| m.value_len)
}

/// Sets a member (its value: empty for a set); true if it is new. The caller [`save`]s.
pub(crate) fn put_member<W: Write + ?Sized>(
    ks: &mut W,
    key: &[u8],
    meta: &mut Meta,
    member: &[u8],
    value: &[u8],
) -> Result<bool, Reply> {
    let record = member_key(key, meta.generation, member);
    let new = ks.meta(&record).is_none();
    ks.put_record(&record, value, Expiry::Never)?;
    if new {
        meta.count += 1;
    }
    Ok(new)
}

/// Removes a member; true if it was there. The caller [`save`]s.
pub(crate) fn remove_member<W: Write + ?Sized>(
    ks: &mut W,
    key: &[u8],
    meta: &mut Meta,
    member: &[u8],
) -> Result<bool, Reply> {
    let record = member_key(key, meta.generation, member);
    if ks.meta(&record).is_none() {
        return Ok(false);
    }
    ks.delete_record(&record)?;
    meta.count = meta.count.saturating_sub(1);
    Ok(true)
}

/// Up to `limit` members (and their record keys), in slot order, from slot `from` (0: the
/// start) up to slot `to` excluded (`None`: the end): a range of the member records,
/// O(log n + returned) on an ordered prefix.
pub(crate) fn members_in<R: Read + ?Sized>(
    ks: &R,
    key: &[u8],
    meta: &Meta,
    from: u64,
    to: Option<u64>,
    limit: usize,
) -> Vec<Member> {
    let prefix = members_prefix(key, meta.generation);
    let start = [&prefix[..], &from.to_be_bytes()].concat();
    let end = to.map(|to| [&prefix[..], &to.to_be_bytes()].concat());
    let start = if from == 0 { Bound::Unbounded } else { Bound::Included(&start[..]) };
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    ks.range(&prefix, start, end, false, limit)
        .into_iter()
        .filter_map(|record| Member::decode(record, prefix.len()))
        .collect()
}

/// Every member of the collection, in slot order: what HGETALL, SMEMBERS and the set algebra
/// enumerate (cost: what they return).
pub(crate) fn members<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta) -> Vec<Member> {
    members_in(ks, key, meta, 0, None, usize::MAX)
}

/// Every member of the collection with its record's value (a hash field's value, a sorted-set
/// member's score), in slot order: one range walk, no lookup per member.
pub(crate) fn members_with_values<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta) -> Vec<(Member, Vec<u8>)> {
    let prefix = members_prefix(key, meta.generation);
    ks.range_entries(&prefix, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .into_iter()
        .filter_map(|(record, value)| Member::decode(record, prefix.len()).map(|m| (m, value)))
        .collect()
}

/// One page of HSCAN or SSCAN: up to `count` members from slot `cursor` on, and the cursor of
/// the next page (the slot of the first member not returned; 0: done). A member present for
/// the whole scan is returned (its slot is fixed); members that share a slot (a 64-bit hash
/// collision) at a page's end come again on the next page, and a run of more than `count` of
/// them is returned whole, so a scan always advances.
pub(crate) fn scan_page<R: Read + ?Sized>(
    ks: &R,
    key: &[u8],
    meta: &Meta,
    cursor: u64,
    count: usize,
) -> (Vec<Member>, u64) {
    let mut page = members_in(ks, key, meta, cursor, None, count.saturating_add(1));
    if page.len() <= count {
        return (page, 0);
    }
    let next = page.pop().expect("more than count").slot();
    if page[0].slot() != next {
        return (page, next);
    }
    let run = members_in(ks, key, meta, next, next.checked_add(1), usize::MAX);
    let after = next.checked_add(1).and_then(|from| members_in(ks, key, meta, from, None, 1).pop());
    (run, after.map_or(0, |m| m.slot()))
}

/// `count` members at random: distinct ones (all of them if `count` is at least the
/// collection's size) or, if not `distinct`, each drawn independently (repeats possible). Each
/// draw is the member at or after a random slot: O(log n) on an ordered prefix.
pub(crate) fn random_members<R: Read + ?Sized>(
    ks: &R,
    key: &[u8],
    meta: &Meta,
    count: usize,
    distinct: bool,
    mut seed: u64,
) -> Vec<Member> {
    let size = usize::try_from(meta.count).unwrap_or(usize::MAX);
    if !distinct {
        return (0..count).filter_map(|_| member_at(ks, key, meta, next_random(&mut seed))).collect();
    }
    if count >= size {
        return members(ks, key, meta);
    }
    if count.saturating_mul(3) <= size {
        // Few of many: draw until `count` distinct ones, a bounded number of tries (a draw is
        // biased towards members after wide gaps between slots, so a try may repeat).
        let mut picked: Vec<Member> = Vec::with_capacity(count);
        let mut seen = std::collections::HashSet::with_capacity(count);
        for _ in 0..count.saturating_mul(RANDOM_TRIES_PER_MEMBER) {
            let Some(m) = member_at(ks, key, meta, next_random(&mut seed)) else { break };
            if seen.insert(m.record.clone()) {
                picked.push(m);
                if picked.len() == count {
                    return picked;
                }
            }
        }
    }
    // Many of few (or unlucky draws): all of them, less random ones.
    let mut all = members(ks, key, meta);
    while all.len() > count {
        let i = (next_random(&mut seed) % all.len() as u64) as usize;
        all.swap_remove(i);
    }
    all
}

/// How many draws per member [`random_members`] tries before it lists the whole collection.
const RANDOM_TRIES_PER_MEMBER: usize = 8;

/// One member record found by a range.
pub(crate) struct Member {
    /// The record's store key.
    pub(crate) record: Vec<u8>,
    /// Where the member's bytes start in `record`.
    at: usize,
}

impl Member {
    fn decode(record: Vec<u8>, prefix_len: usize) -> Option<Member> {
        (record.len() >= prefix_len + 8).then_some(Member { record, at: prefix_len + 8 })
    }

    /// The member (a hash's field, a set's element).
    pub(crate) fn name(&self) -> &[u8] {
        &self.record[self.at..]
    }

    /// Its slot.
    pub(crate) fn slot(&self) -> u64 {
        u64::from_be_bytes(self.record[self.at - 8..self.at].try_into().expect("8 bytes"))
    }
}

/// The member at or after slot `point`, wrapping around: a pseudo-random member for a random
/// `point` (members are spread over slots by a hash). Two range reads at most.
pub(crate) fn member_at<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta, point: u64) -> Option<Member> {
    members_in(ks, key, meta, point.max(1), None, 1).pop().or_else(|| members_in(ks, key, meta, 0, None, 1).pop())
}

/// Drops the collection at `key`, if any: its meta record, and its members while there are at
/// most [`INLINE_DROP_MEMBERS_MAX`] (more are left as invisible orphans). Returns the expiry it
/// had (`Some(None)`: none), `None` if there was no collection.
pub(crate) fn drop<W: Write + ?Sized>(ks: &mut W, key: &[u8]) -> Result<Option<Option<u64>>, Reply> {
    let Some(meta) = collection(ks, key) else { return Ok(None) };
    if meta.count <= INLINE_DROP_MEMBERS_MAX {
        for member in members(ks, key, &meta) {
            ks.delete_record(&member.record)?;
        }
        if meta.kind == Kind::ZSet {
            for record in score_records(ks, key, &meta, Bound::Unbounded, Bound::Unbounded, false, usize::MAX) {
                ks.delete_record(&record)?;
            }
        }
    }
    ks.delete_record(&meta_key(key))?;
    Ok(Some(meta.expires_ms))
}

/// Copies the collection `meta` at `src` to `dst` (absent: the caller dropped what was there),
/// with its expiry: a new generation, every member rewritten under it. O(members).
pub(crate) fn copy<W: Write + ?Sized>(ks: &mut W, src: &[u8], meta: &Meta, dst: &[u8]) -> Result<(), Reply> {
    let fresh = open_or_create(ks, dst, meta.kind)?;
    let dst_prefix = members_prefix(dst, fresh.generation);
    for member in members(ks, src, meta) {
        let value = ks.get(&member.record).map(|(v, _)| v).unwrap_or_default();
        // The slot (a list's position) and the member, as they are.
        let record = [&dst_prefix[..], &member.record[member.at - 8..]].concat();
        ks.put_record(&record, &value, Expiry::Never)?;
    }
    if meta.kind == Kind::ZSet {
        let (src_scores, dst_scores) =
            (records_prefix(SCORE_PREFIX, src, meta.generation), records_prefix(SCORE_PREFIX, dst, fresh.generation));
        for record in score_records(ks, src, meta, Bound::Unbounded, Bound::Unbounded, false, usize::MAX) {
            ks.put_record(&[&dst_scores[..], &record[src_scores.len()..]].concat(), b"", Expiry::Never)?;
        }
    }
    let mut copy = Meta { generation: fresh.generation, stamp: 0, ..*meta };
    save(ks, dst, &mut copy)
}

/// The order-preserving form of a score: its bits with the sign flipped for positives and all
/// bits flipped for negatives, so that scores sort as big-endian bytes in numeric order (-0 is
/// stored as 0: Redis does not tell them apart).
pub(crate) fn score_slot(score: f64) -> u64 {
    let bits = if score == 0.0 { 0 } else { score.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The score-index record of `member` with `score` in a sorted set.
pub(crate) fn score_key(key: &[u8], meta: &Meta, score: f64, member: &[u8]) -> Vec<u8> {
    let mut out = records_prefix(SCORE_PREFIX, key, meta.generation);
    out.extend_from_slice(&score_slot(score).to_be_bytes());
    out.extend_from_slice(member);
    out
}

/// A score-index position: the first record at `score` (and `member`, if given).
pub(crate) fn score_position(key: &[u8], meta: &Meta, score_slot: u64, member: &[u8]) -> Vec<u8> {
    let mut out = records_prefix(SCORE_PREFIX, key, meta.generation);
    out.extend_from_slice(&score_slot.to_be_bytes());
    out.extend_from_slice(member);
    out
}

/// The score-index records of a sorted set within `start..end` (whole store keys; see
/// [`score_position`]), ascending or descending, at most `limit`.
pub(crate) fn score_records<R: Read + ?Sized>(
    ks: &R,
    key: &[u8],
    meta: &Meta,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    limit: usize,
) -> Vec<Vec<u8>> {
    ks.range(&records_prefix(SCORE_PREFIX, key, meta.generation), start, end, reverse, limit)
}

/// [`score_records`] into `buf` (cleared first), each record a key with an empty value: one
/// walk of the store's ordered index, no allocation per record once `buf` has grown.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_records_into<R: Read + ?Sized>(
    ks: &R,
    key: &[u8],
    meta: &Meta,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    limit: usize,
    buf: &mut RangeBuf,
) {
    ks.range_into(&records_prefix(SCORE_PREFIX, key, meta.generation), (start, end), reverse, limit, buf);
}

/// Where the score slot starts in a score-index record of `key` (the member follows it).
pub(crate) fn score_slot_at(key: &[u8]) -> usize {
    SCORE_PREFIX.len() + 4 + key.len() + 8
}

/// A score-index record's score and member.
pub(crate) fn decode_score_record<'r>(key: &[u8], record: &'r [u8]) -> (f64, &'r [u8]) {
    let at = score_slot_at(key);
    let slot = u64::from_be_bytes(record[at..at + 8].try_into().expect("8 bytes"));
    let bits = if slot >> 63 == 1 { slot & !(1 << 63) } else { !slot };
    (f64::from_bits(bits), &record[at + 8..])
}

/// The order-preserving form of a list position: its bits with the sign flipped, so that
/// positions sort as big-endian bytes in numeric order.
fn position_slot(position: i64) -> u64 {
    (position as u64) ^ (1 << 63)
}

/// The record key of a list's element at `position` (the list's `head` + its index).
pub(crate) fn position_key(key: &[u8], meta: &Meta, position: i64) -> Vec<u8> {
    let mut out = members_prefix(key, meta.generation);
    out.extend_from_slice(&position_slot(position).to_be_bytes());
    out
}

/// The list elements at indexes `from..=to` (0-based, within `0..count`), in order, into `buf`:
/// one range walk over their position records, which are contiguous (positions `head` to
/// `head + count - 1`), so O(log n + returned) with no lookup per element. Falls back to one
/// lookup per element if the walk does not find exactly that many (never, unless the records
/// were altered behind the server's back), so the reply keeps its length.
pub(crate) fn elements_into<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta, from: i64, to: i64, buf: &mut RangeBuf) {
    let prefix = members_prefix(key, meta.generation);
    let (first, last) = (position_key(key, meta, meta.head + from), position_key(key, meta, meta.head + to));
    let wanted = (to - from + 1) as usize;
    ks.range_into(&prefix, (Bound::Included(&first), Bound::Included(&last)), false, wanted, buf);
    if buf.len() != wanted {
        buf.clear();
        for i in from..=to {
            let position = position_key(key, meta, meta.head + i);
            buf.push(&position, &element(ks, key, meta, i).unwrap_or_default());
        }
    }
}

/// The list element at `index` from the head (0-based, within `0..count`).
pub(crate) fn element<R: Read + ?Sized>(ks: &R, key: &[u8], meta: &Meta, index: i64) -> Option<Vec<u8>> {
    ks.get(&position_key(key, meta, meta.head + index)).map(|(v, _)| v)
}

/// What one step of the orphan sweep did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SweepStep {
    /// Member records looked at.
    pub(crate) looked: usize,
    /// Orphans among them, deleted.
    pub(crate) deleted: usize,
    /// The last record looked at, where the next step goes on (`None`: the pass is done).
    pub(crate) next: Option<Vec<u8>>,
}

/// The user key and generation a member record belongs to.
fn owner(record: &[u8]) -> Option<(&[u8], u64)> {
    let rest = record.strip_prefix(MEMBER_PREFIX).or_else(|| record.strip_prefix(SCORE_PREFIX))?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = rest.get(4..4 + len)?;
    let generation = u64::from_be_bytes(rest.get(4 + len..12 + len)?.try_into().ok()?);
    Some((key, generation))
}

/// The prefixes the orphan sweep walks: the records of a collection's members.
pub(crate) const SWEPT_PREFIXES: [&[u8]; 2] = [MEMBER_PREFIX, SCORE_PREFIX];

/// One bounded step of the orphan sweep: looks at up to `budget` records under `prefix` (one of
/// [`SWEPT_PREFIXES`]) after `after`
/// (`None`: from the start), in key order, and deletes those whose generation is not their
/// key's live collection's (left by a DEL, overwrite or expiry of a collection too large to
/// delete inline). Orphans are invisible to every command, so deleting them changes nothing a
/// command can read: a replica may sweep on its own.
pub(crate) fn sweep_step<W: Write + ?Sized>(
    ks: &mut W,
    prefix: &[u8],
    after: Option<&[u8]>,
    budget: usize,
) -> Result<SweepStep, Reply> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let records = ks.range(prefix, start, Bound::Unbounded, false, budget);
    let mut deleted = 0;
    // The key last looked up and its live generation: a collection's members are contiguous.
    let mut live: Option<(Vec<u8>, Option<u64>)> = None;
    for record in &records {
        let Some((key, generation)) = owner(record) else { continue };
        if live.as_ref().is_none_or(|(k, _)| k[..] != *key) {
            live = Some((key.to_vec(), collection(ks, key).map(|m| m.generation)));
        }
        if live.as_ref().and_then(|(_, g)| *g) != Some(generation) {
            ks.delete_record(record)?;
            deleted += 1;
        }
    }
    let next = if records.len() == budget { records.last().cloned() } else { None };
    Ok(SweepStep { looked: records.len(), deleted, next })
}

/// DBSIZE: the live records less the members (orphans included) and the generation counter:
/// each collection counts once, by its meta record.
pub(crate) fn user_key_count<R: Read + ?Sized>(ks: &R) -> usize {
    // No counter: no collection was ever made, so no member record exists (O(1) for a store of
    // strings, whatever `count_prefix` costs).
    if ks.meta(GENERATION_KEY).is_none() {
        return ks.len();
    }
    let internal = ks.count_prefix(MEMBER_PREFIX) + ks.count_prefix(SCORE_PREFIX) + 1;
    ks.len().saturating_sub(internal)
}

/// A deterministic pseudo-random number for a collection command: from the command's time, the
/// key, the collection's stamp and a salt, so that every replica applying the same entry draws
/// the same (SPOP, SRANDMEMBER and HRANDFIELD need no randomness carried in the log).
pub(crate) fn seed(now_ms: u64, key: &[u8], meta: &Meta, salt: u64) -> u64 {
    #[allow(deprecated, reason = "fixed keys: every replica must draw the same")]
    let mut h = std::hash::SipHasher::new_with_keys(now_ms, meta.stamp ^ salt.rotate_left(32));
    h.write(key);
    h.write_u64(meta.generation);
    h.finish()
}

/// splitmix64: the next of a sequence of pseudo-random numbers from `state`.
pub(crate) fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot is on disk: pinned, so a change of hasher is a deliberate format change.
    #[test]
    fn slots_are_pinned() {
        assert_eq!(slot(b""), slot(b""));
        assert_ne!(slot(b"a"), slot(b"b"));
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(0x0706050403020100, 0x0f0e0d0c0b0a0908);
        h.write(b"");
        assert_eq!(h.finish(), 0x726f_db47_dd0e_0e31, "SipHash-2-4's reference vector");
    }

    #[test]
    fn meta_round_trips() {
        let meta = Meta { kind: Kind::Set, generation: 7, count: 3, stamp: 9, expires_ms: Some(5), head: 0, tail: 0 };
        assert_eq!(Meta::decode(&meta.encode(), Some(5)), Some(meta));
        let list = Meta { kind: Kind::List, head: -2, tail: 1, ..meta };
        assert_eq!(Meta::decode(&list.encode(), Some(5)), Some(list));
        assert_eq!(Meta::decode(b"short", None), None);
    }

    /// Orphans (members of a dropped incarnation too large to delete inline, and of an expired
    /// collection) are swept in bounded steps; live members never are.
    #[test]
    fn the_sweep_deletes_orphans_and_only_them() {
        use crate::db::TxnView;
        let dir = tempfile::tempdir().unwrap();
        let store = ferrocask::Store::open(dir.path()).unwrap();
        let count = INLINE_DROP_MEMBERS_MAX + 10;
        store
            .transaction(move |txn| {
                let view = &mut TxnView::new(txn, 1 << 20);
                let mut meta = open_or_create(view, b"big", Kind::Set).unwrap();
                for i in 0..count {
                    put_member(view, b"big", &mut meta, format!("m{i}").as_bytes(), b"").unwrap();
                }
                save(view, b"big", &mut meta).unwrap();
                let mut other = open_or_create(view, b"kept", Kind::Hash).unwrap();
                put_member(view, b"kept", &mut other, b"f", b"v").unwrap();
                save(view, b"kept", &mut other).unwrap();
            })
            .unwrap();
        store
            .transaction(|txn| {
                let view = &mut TxnView::new(txn, 1 << 20);
                view.delete(b"big").unwrap();
                let mut meta = open_or_create(view, b"big", Kind::Set).unwrap();
                put_member(view, b"big", &mut meta, b"new", b"").unwrap();
                save(view, b"big", &mut meta).unwrap();
            })
            .unwrap();
        let members = |store: &ferrocask::Store| store.keys().filter(|k| k.starts_with(MEMBER_PREFIX)).count();
        assert_eq!(members(&store) as u64, count + 2, "the old incarnation's members are orphans");
        let mut after: Option<Vec<u8>> = None;
        let mut deleted = 0;
        loop {
            let from = after.take();
            let step = store
                .transaction(move |txn| {
                    sweep_step(&mut TxnView::new(txn, 1 << 20), MEMBER_PREFIX, from.as_deref(), 100).unwrap()
                })
                .unwrap();
            assert!(step.looked <= 100);
            deleted += step.deleted;
            match step.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(deleted as u64, count);
        assert_eq!(members(&store), 2, "the live members stay");
    }

    /// A sorted set's orphans are in two prefixes (members and the score index): both are
    /// swept, and DBSIZE never counted them.
    #[test]
    fn a_sorted_set_s_orphans_are_swept_in_both_prefixes() {
        use bytes::Bytes;

        use crate::db::TxnView;
        let dir = tempfile::tempdir().unwrap();
        let store = ferrocask::Store::open(dir.path()).unwrap();
        let count = INLINE_DROP_MEMBERS_MAX + 1;
        let run = |words: Vec<String>| {
            let args: Vec<Bytes> = words.into_iter().map(Bytes::from).collect();
            let crate::cmd::Handler::Write(f) = crate::cmd::lookup(&args[0]).unwrap().handler else { panic!() };
            store.transaction(move |txn| f(&mut TxnView::new(txn, 1 << 20), &args)).unwrap()
        };
        let mut zadd = vec!["ZADD".to_string(), "z".to_string()];
        for i in 0..count {
            zadd.extend([i.to_string(), format!("m{i}")]);
        }
        assert_eq!(run(zadd), Reply::Int(count as i64));
        assert_eq!(run(vec!["DEL".into(), "z".into()]), Reply::Int(1));
        let under = |p: &[u8]| store.keys().filter(|k| k.starts_with(p)).count() as u64;
        assert_eq!((under(MEMBER_PREFIX), under(SCORE_PREFIX)), (count, count), "orphans left by DEL");
        for prefix in SWEPT_PREFIXES {
            let step = store
                .transaction(move |txn| sweep_step(&mut TxnView::new(txn, 1 << 20), prefix, None, usize::MAX).unwrap())
                .unwrap();
            assert_eq!(step.deleted as u64, count);
        }
        assert_eq!((under(MEMBER_PREFIX), under(SCORE_PREFIX)), (0, 0));
    }

    /// A view that counts its lookups of meta records (what the type checks cost) in
    /// [`LOOKUPS`] (a transaction's closure may run on another thread: the count is read there).
    struct Counting<'t, 'a, 'b> {
        inner: &'b mut crate::db::TxnView<'t, 'a>,
    }

    impl Read for Counting<'_, '_, '_> {
        fn now_ms(&self) -> u64 {
            self.inner.now_ms()
        }
        fn get(&self, key: &[u8]) -> Option<Entry> {
            if key.starts_with(META_PREFIX) {
                count_lookup();
            }
            self.inner.get(key)
        }
        fn meta(&self, key: &[u8]) -> Option<KeyMeta> {
            if key.starts_with(META_PREFIX) {
                count_lookup();
            }
            self.inner.meta(key)
        }
        fn keys(&self) -> Vec<Vec<u8>> {
            self.inner.keys()
        }
        fn scan(&self, cursor: u64, count: usize) -> ferrocask::ScanPage {
            self.inner.scan(cursor, count)
        }
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn value_bytes_max(&self) -> usize {
            self.inner.value_bytes_max()
        }
    }

    impl Write for Counting<'_, '_, '_> {
        fn put_record(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<(), Reply> {
            self.inner.put_record(key, value, expiry)
        }
        fn delete_record(&mut self, key: &[u8]) -> Result<(), Reply> {
            self.inner.delete_record(key)
        }
    }

    thread_local! {
        static LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn count_lookup() {
        LOOKUPS.with(|n| n.set(n.get() + 1));
    }

    /// The hot path's promise: a string command on a string pays no lookup for the type check,
    /// a miss or a blind overwrite pays one.
    #[test]
    fn type_checks_cost_a_string_hit_nothing() {
        use bytes::Bytes;

        use crate::cmd::{lookup, Handler};
        let dir = tempfile::tempdir().unwrap();
        let store = ferrocask::Store::open(dir.path()).unwrap();
        store.put(b"s", b"1").unwrap();
        for (words, want) in [
            (&["GET", "s"][..], 0),
            (&["SET", "s", "2"], 0),
            (&["INCR", "s"], 0),
            (&["APPEND", "s", "x"], 0),
            (&["GETSET", "s", "3"], 0),
            (&["GET", "nope"], 1),
            (&["SET", "new", "v"], 1),
            (&["INCR", "n"], 1),
            (&["SETEX", "s", "100", "v"], 1),
        ] {
            let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
            let spec = lookup(&args[0]).unwrap();
            let lookups = store
                .transaction(move |txn| {
                    let mut view = crate::db::TxnView::new(txn, 1 << 20);
                    let mut counting = Counting { inner: &mut view };
                    LOOKUPS.with(|n| n.set(0));
                    let reply = match spec.handler {
                        Handler::Read(f) => f(&counting, &args),
                        Handler::Write(f) => f(&mut counting, &args),
                        _ => unreachable!(),
                    };
                    assert!(!reply.is_error(), "{reply:?}");
                    LOOKUPS.with(|n| n.get())
                })
                .unwrap();
            assert_eq!(lookups, want, "{words:?}");
        }
    }

    #[test]
    fn member_keys_of_a_key_do_not_share_a_prefix_with_a_longer_key() {
        let a = members_prefix(b"k", 1);
        let b = member_key(b"k\0\0\0", 1, b"m");
        assert!(!b.starts_with(&a));
        assert_eq!(user_key(&meta_key(b"user")), Some(&b"user"[..]));
        assert_eq!(user_key(&member_key(b"user", 1, b"m")), None);
        assert_eq!(user_key(b"plain"), Some(&b"plain"[..]));
        assert_eq!(owner(&member_key(b"user", 7, b"m")), Some((&b"user"[..], 7)));
    }
}
