//! One adapter per store, each configured so that a single-key write returns only once it is
//! durable (or, for sled as configured, once the store says it is: see `Sled`).

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

/// The operations every workload needs. Implementations panic on error: this is a benchmark.
pub trait Kv: Sync {
    /// One durable single-key write.
    fn put(&self, key: &[u8], value: &[u8]);
    /// Length of the value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Option<usize>;
    /// The store's fastest durable bulk path: the whole slice as one batch / transaction,
    /// synced once.
    fn load(&self, items: &[([u8; 16], Vec<u8>)]);
    /// Reclaim space after overwrites, where the store has a way to.
    fn compact(&mut self);
    /// The range workloads' bulk path (`--ranges`): keys of any length, as [`Kv::load`].
    fn load_pairs(&self, _items: &[(Vec<u8>, Vec<u8>)]) {
        unimplemented!("range workloads are not measured for this store")
    }
    /// Up to `n` entries from the first key at or after `start`, in key order: the keys read
    /// and the sum of their values' lengths (every value is read).
    fn scan(&self, _start: &[u8], _n: usize) -> (usize, usize) {
        unimplemented!("range workloads are not measured for this store")
    }
    /// Every entry in key order, as [`Kv::scan`] counts them.
    fn scan_all(&self) -> (usize, usize) {
        unimplemented!("range workloads are not measured for this store")
    }
}

/// The prefix of the range workloads' keys: declared with `Options::ordered_prefix` in
/// ferrocask (its ordered index), one byte in front of each key in every store.
pub const RANGE_PREFIX: &[u8] = b"r";
/// Entries per call when ferrocask walks a whole prefix (a cursor over pages, as an
/// application iterating a million keys would).
const FERRO_PAGE_KEYS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    Ferrocask,
    Redb,
    Fjall,
    /// sled 0.34 as documented: insert + flush (ends in sync_file_range, not fdatasync).
    Sled,
    /// sled 0.34 with an added fdatasync of its data file after each flush.
    SledFsync,
    Sqlite,
    #[cfg(feature = "rocksdb")]
    Rocksdb,
}

impl Engine {
    pub fn all() -> Vec<Engine> {
        #[allow(unused_mut)]
        let mut v = vec![Engine::Ferrocask, Engine::Redb, Engine::Fjall, Engine::Sled, Engine::SledFsync, Engine::Sqlite];
        #[cfg(feature = "rocksdb")]
        v.push(Engine::Rocksdb);
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Ferrocask => "ferrocask",
            Engine::Redb => "redb",
            Engine::Fjall => "fjall",
            Engine::Sled => "sled",
            Engine::SledFsync => "sled+fdatasync",
            Engine::Sqlite => "sqlite",
            #[cfg(feature = "rocksdb")]
            Engine::Rocksdb => "rocksdb",
        }
    }

    /// Whether a put is durable when it returns (sled's documented flush is not, on Linux).
    pub fn durable(self) -> bool {
        self != Engine::Sled
    }

    /// Whether reads, open and space are measured for this engine. `sled+fdatasync` differs
    /// from `sled` only in how puts are synced, so it runs the put workloads alone.
    pub fn reads_too(self) -> bool {
        self != Engine::SledFsync
    }

    pub fn open(self, dir: &Path) -> Box<dyn Kv> {
        std::fs::create_dir_all(dir).expect("create store directory");
        match self {
            Engine::Ferrocask => Box::new(Ferro::open(dir)),
            Engine::Redb => Box::new(Redb::open(dir)),
            Engine::Fjall => Box::new(Fjall::open(dir)),
            Engine::Sled => Box::new(Sled::open(dir, false)),
            Engine::SledFsync => Box::new(Sled::open(dir, true)),
            Engine::Sqlite => Box::new(Sqlite::open(dir)),
            #[cfg(feature = "rocksdb")]
            Engine::Rocksdb => Box::new(rocks::Rocks::open(dir)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ferrocask: `Store::open` defaults, i.e. `SyncMode::Always`: every put is fdatasync'd before it
// returns, concurrent writers share one sync (group commit). Bulk path: one `Batch` per chunk.
pub struct Ferro(ferrocask::Store);

thread_local! {
    /// Each thread's reusable range buffer (`Store::range_into`).
    static FERRO_BUF: std::cell::RefCell<ferrocask::RangeBuf> = std::cell::RefCell::new(ferrocask::RangeBuf::new());
}

impl Ferro {
    fn open(dir: &Path) -> Ferro {
        Ferro(ferrocask::Store::open(dir).expect("ferrocask open"))
    }

    /// Default options with [`RANGE_PREFIX`] declared ordered (what the range workloads open).
    pub fn open_ordered(dir: &Path) -> Ferro {
        std::fs::create_dir_all(dir).expect("create store directory");
        let options = ferrocask::Options::default().ordered_prefix(RANGE_PREFIX);
        Ferro(ferrocask::Store::open_with(dir, options).expect("ferrocask open"))
    }

    /// Up to `n` entries from `start` through the thread's reusable buffer: the keys read, the
    /// sum of the values' lengths, and the last key when there were `n` (where a next page starts).
    fn scan_from(&self, start: std::ops::Bound<&[u8]>, n: usize, next: &mut Vec<u8>) -> (usize, usize, bool) {
        FERRO_BUF.with_borrow_mut(|buf| {
            let end = std::ops::Bound::Unbounded;
            self.0.range_into(RANGE_PREFIX, start, end, false, n, buf).expect("ferrocask range_into");
            let bytes = buf.iter().map(|(_, v)| v.len()).sum();
            let more = buf.len() == n;
            if let (true, Some((last, _))) = (more, buf.last()) {
                next.clear();
                next.extend_from_slice(last);
            }
            (buf.len(), bytes, more)
        })
    }
}

impl Kv for Ferro {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.put(key, value).expect("ferrocask put");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.0.get(key).expect("ferrocask get").map(|v| v.len())
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let mut batch = ferrocask::Batch::new();
        for (k, v) in items {
            batch.put(k, v);
        }
        self.0.write(batch).expect("ferrocask batch");
    }
    fn compact(&mut self) {
        self.0.compact().expect("ferrocask compact");
    }
    fn load_pairs(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut batch = ferrocask::Batch::new();
        for (k, v) in items {
            batch.put(k, v);
        }
        self.0.write(batch).expect("ferrocask batch");
    }
    fn scan(&self, start: &[u8], n: usize) -> (usize, usize) {
        let (keys, bytes, _) = self.scan_from(std::ops::Bound::Included(start), n, &mut Vec::new());
        (keys, bytes)
    }
    fn scan_all(&self) -> (usize, usize) {
        let (mut keys, mut bytes) = (0, 0);
        let (mut after, mut next) = (Vec::new(), Vec::new());
        let (k, b, mut more) = self.scan_from(std::ops::Bound::Unbounded, FERRO_PAGE_KEYS, &mut next);
        (keys, bytes) = (keys + k, bytes + b);
        while more {
            std::mem::swap(&mut after, &mut next);
            let (k, b, m) = self.scan_from(std::ops::Bound::Excluded(&after), FERRO_PAGE_KEYS, &mut next);
            (keys, bytes, more) = (keys + k, bytes + b, m);
        }
        (keys, bytes)
    }
}

/// A ferrocask store seen through one key prefix (put and get prepend it): the ordered-prefix
/// and hash-only keys of one store, side by side.
pub struct FerroPrefixed<'a> {
    pub store: &'a Ferro,
    pub prefix: &'static [u8],
}

impl Kv for FerroPrefixed<'_> {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.store.0.put([self.prefix, key].concat(), value).expect("ferrocask put");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.store.0.get([self.prefix, key].concat()).expect("ferrocask get").map(|v| v.len())
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let mut batch = ferrocask::Batch::new();
        for (k, v) in items {
            batch.put([self.prefix, &k[..]].concat(), v);
        }
        self.store.0.write(batch).expect("ferrocask batch");
    }
    fn compact(&mut self) {}
}

// ---------------------------------------------------------------------------------------------
// redb: each put is its own write transaction committed with the default
// `Durability::Immediate` (durable when `commit` returns; redb has one writer at a time, so
// concurrent writers queue in `begin_write` and each commit syncs on its own). Each get opens a
// fresh read transaction (sees the latest commit, as the other stores' gets do).
const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

struct Redb(redb::Database);

impl Redb {
    fn open(dir: &Path) -> Redb {
        // `create` opens the file if it already holds a database.
        let db = redb::Database::create(dir.join("data.redb")).expect("redb open");
        let tx = db.begin_write().expect("redb begin_write");
        tx.open_table(REDB_TABLE).expect("redb open_table");
        tx.commit().expect("redb commit");
        Redb(db)
    }
}

impl Kv for Redb {
    fn put(&self, key: &[u8], value: &[u8]) {
        let tx = self.0.begin_write().expect("redb begin_write");
        // Default durability is Durability::Immediate; stated here for the reader.
        {
            let mut t = tx.open_table(REDB_TABLE).expect("redb open_table");
            t.insert(key, value).expect("redb insert");
        }
        tx.commit().expect("redb commit");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        use redb::ReadableDatabase;
        let tx = self.0.begin_read().expect("redb begin_read");
        let t = tx.open_table(REDB_TABLE).expect("redb open_table");
        let v = t.get(key).expect("redb get");
        v.map(|g| g.value().len())
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let tx = self.0.begin_write().expect("redb begin_write");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("redb open_table");
            for (k, v) in items {
                t.insert(&k[..], &v[..]).expect("redb insert");
            }
        }
        tx.commit().expect("redb commit");
    }
    fn compact(&mut self) {
        // `compact` may need several passes to move everything down.
        while self.0.compact().expect("redb compact") {}
    }
    fn load_pairs(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let tx = self.0.begin_write().expect("redb begin_write");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("redb open_table");
            for (k, v) in items {
                t.insert(&k[..], &v[..]).expect("redb insert");
            }
        }
        tx.commit().expect("redb commit");
    }
    fn scan(&self, start: &[u8], n: usize) -> (usize, usize) {
        use redb::ReadableDatabase;
        let tx = self.0.begin_read().expect("redb begin_read");
        let t = tx.open_table(REDB_TABLE).expect("redb open_table");
        let (mut keys, mut bytes) = (0, 0);
        for entry in t.range(start..).expect("redb range").take(n) {
            let (_, v) = entry.expect("redb range entry");
            keys += 1;
            bytes += v.value().len();
        }
        (keys, bytes)
    }
    fn scan_all(&self) -> (usize, usize) {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.0.begin_read().expect("redb begin_read");
        let t = tx.open_table(REDB_TABLE).expect("redb open_table");
        let (mut keys, mut bytes) = (0, 0);
        for entry in t.iter().expect("redb iter") {
            let (_, v) = entry.expect("redb iter entry");
            keys += 1;
            bytes += v.value().len();
        }
        (keys, bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// fjall 3: `keyspace.insert` then `db.persist(PersistMode::SyncData)` (fdatasync of the journal,
// taken under the journal writer's mutex, so concurrent writers each sync in turn). Bulk path:
// a `WriteBatch` committed with `durability(Some(PersistMode::SyncData))`.
struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Fjall {
        let db = fjall::Database::builder(dir).open().expect("fjall open");
        let ks = db.keyspace("kv", fjall::KeyspaceCreateOptions::default).expect("fjall keyspace");
        Fjall { db, ks }
    }
}

impl Kv for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.ks.insert(key, value).expect("fjall insert");
        self.db.persist(fjall::PersistMode::SyncData).expect("fjall persist");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.ks.get(key).expect("fjall get").map(|v| v.len())
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let mut b = self.db.batch().durability(Some(fjall::PersistMode::SyncData));
        for (k, v) in items {
            b.insert(&self.ks, &k[..], &v[..]);
        }
        b.commit().expect("fjall batch commit");
    }
    fn compact(&mut self) {
        // Major compaction (exposed as a doc-hidden public method in fjall 3.1).
        self.ks.major_compact().expect("fjall major_compact");
    }
    fn load_pairs(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = self.db.batch().durability(Some(fjall::PersistMode::SyncData));
        for (k, v) in items {
            b.insert(&self.ks, &k[..], &v[..]);
        }
        b.commit().expect("fjall batch commit");
    }
    fn scan(&self, start: &[u8], n: usize) -> (usize, usize) {
        let (mut keys, mut bytes) = (0, 0);
        for guard in self.ks.range(start..).take(n) {
            let (_, v) = guard.into_inner().expect("fjall range entry");
            keys += 1;
            bytes += v.len();
        }
        (keys, bytes)
    }
    fn scan_all(&self) -> (usize, usize) {
        let (mut keys, mut bytes) = (0, 0);
        for guard in self.ks.iter() {
            let (_, v) = guard.into_inner().expect("fjall iter entry");
            keys += 1;
            bytes += v.len();
        }
        (keys, bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// sled 0.34: `insert` then `flush()`. sled's flush ends in `sync_file_range(WAIT_BEFORE | WRITE |
// WAIT_AFTER)`, which writes the pages out but neither flushes the disk's write cache nor
// persists metadata on Linux, so it is not a durable write. `sled+fdatasync` adds
// `sync_data()` (fdatasync) of sled's data file `<dir>/db` after the flush, which is.
struct Sled {
    db: sled::Db,
    /// sled's data file `<dir>/db` (sled 0.34 keeps everything but its snapshot there).
    data: File,
    fsync_puts: bool,
}

impl Sled {
    fn open(dir: &Path, fsync_puts: bool) -> Sled {
        let db = sled::open(dir).expect("sled open");
        let data = File::open(dir.join("db")).expect("open sled data file");
        Sled { db, data, fsync_puts }
    }
    fn sync(&self) {
        self.db.flush().expect("sled flush");
        if self.fsync_puts {
            self.data.sync_data().expect("fdatasync sled data file");
        }
    }
}

impl Kv for Sled {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).expect("sled insert");
        self.sync();
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        self.db.get(key).expect("sled get").map(|v| v.len())
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let mut b = sled::Batch::default();
        for (k, v) in items {
            b.insert(&k[..], &v[..]);
        }
        self.db.apply_batch(b).expect("sled apply_batch");
        self.db.flush().expect("sled flush");
        // The bulk path is synced for real, whichever variant this is.
        self.data.sync_data().expect("fdatasync sled data file");
    }
    fn compact(&mut self) {
        // sled 0.34 has no explicit compaction (its segment cleaner runs on its own).
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite (bundled): journal_mode=WAL, synchronous=FULL (the WAL is fsync'd at every commit), one
// `INSERT OR REPLACE` per autocommit transaction into `kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT
// ROWID`. Writes go through ONE mutex-guarded connection (SQLite admits one writer at a time;
// a mutex queues writers without the busy handler's sleeps). Reads use a pool of read
// connections, one per concurrent reader thread.
struct Sqlite {
    path: std::path::PathBuf,
    writer: Mutex<rusqlite::Connection>,
    readers: Mutex<Vec<rusqlite::Connection>>,
}

impl Sqlite {
    fn connect(path: &Path) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(path).expect("sqlite open");
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).expect("journal_mode");
        assert_eq!(mode.to_lowercase(), "wal");
        c.execute_batch("PRAGMA synchronous=FULL;").expect("synchronous");
        c.busy_timeout(std::time::Duration::from_secs(30)).expect("busy_timeout");
        c
    }

    fn open(dir: &Path) -> Sqlite {
        let path = dir.join("data.sqlite");
        let w = Sqlite::connect(&path);
        w.execute_batch("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;")
            .expect("create table");
        Sqlite { path, writer: Mutex::new(w), readers: Mutex::new(Vec::new()) }
    }
}

impl Kv for Sqlite {
    fn put(&self, key: &[u8], value: &[u8]) {
        let c = self.writer.lock().unwrap();
        let mut st = c.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)").expect("prepare");
        st.execute(rusqlite::params![key, value]).expect("sqlite insert");
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        use rusqlite::OptionalExtension;
        let c = self.readers.lock().unwrap().pop().unwrap_or_else(|| Sqlite::connect(&self.path));
        let n = {
            let mut st = c.prepare_cached("SELECT length(v) FROM kv WHERE k = ?1").expect("prepare");
            st.query_row([key], |r| r.get::<_, i64>(0)).optional().expect("sqlite get")
        };
        self.readers.lock().unwrap().push(c);
        n.map(|n| n as usize)
    }
    fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
        let mut c = self.writer.lock().unwrap();
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)").expect("prepare");
            for (k, v) in items {
                st.execute(rusqlite::params![&k[..], &v[..]]).expect("sqlite insert");
            }
        }
        tx.commit().expect("commit");
    }
    fn compact(&mut self) {
        self.readers.lock().unwrap().clear();
        let c = self.writer.lock().unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("vacuum");
    }
    fn load_pairs(&self, items: &[(Vec<u8>, Vec<u8>)]) {
        let mut c = self.writer.lock().unwrap();
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)").expect("prepare");
            for (k, v) in items {
                st.execute(rusqlite::params![&k[..], &v[..]]).expect("sqlite insert");
            }
        }
        tx.commit().expect("commit");
    }
    fn scan(&self, start: &[u8], n: usize) -> (usize, usize) {
        self.scan_sql("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2", rusqlite::params![start, n as i64])
    }
    fn scan_all(&self) -> (usize, usize) {
        self.scan_sql("SELECT k, v FROM kv ORDER BY k", rusqlite::params![])
    }
}

impl Sqlite {
    /// Runs a key-ordered `SELECT k, v` on a pooled read connection, reading every value.
    fn scan_sql(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> (usize, usize) {
        let c = self.readers.lock().unwrap().pop().unwrap_or_else(|| Sqlite::connect(&self.path));
        let counted = {
            let mut st = c.prepare_cached(sql).expect("prepare");
            let mut rows = st.query(params).expect("sqlite query");
            let (mut keys, mut bytes) = (0, 0);
            while let Some(row) = rows.next().expect("sqlite row") {
                keys += 1;
                bytes += row.get_ref(1).expect("v").as_blob().expect("blob").len();
            }
            (keys, bytes)
        };
        self.readers.lock().unwrap().push(c);
        counted
    }
}

// ---------------------------------------------------------------------------------------------
// RocksDB (opt-in feature): `WriteOptions::set_sync(true)` on every write (the WAL is fsync'd
// before the write returns; concurrent synced writers are grouped by RocksDB's write leader).
#[cfg(feature = "rocksdb")]
mod rocks {
    use super::Kv;
    use std::path::Path;

    pub struct Rocks {
        db: rocksdb::DB,
        sync: rocksdb::WriteOptions,
    }

    // SAFETY: `WriteOptions` wraps a C options struct that RocksDB only reads during a write;
    // it is never mutated after open, so sharing it between threads is sound.
    unsafe impl Sync for Rocks {}

    impl Rocks {
        pub fn open(dir: &Path) -> Rocks {
            let mut o = rocksdb::Options::default();
            o.create_if_missing(true);
            let db = rocksdb::DB::open(&o, dir).expect("rocksdb open");
            let mut sync = rocksdb::WriteOptions::default();
            sync.set_sync(true);
            Rocks { db, sync }
        }
    }

    impl Kv for Rocks {
        fn put(&self, key: &[u8], value: &[u8]) {
            self.db.put_opt(key, value, &self.sync).expect("rocksdb put");
        }
        fn get(&self, key: &[u8]) -> Option<usize> {
            self.db.get_pinned(key).expect("rocksdb get").map(|v| v.len())
        }
        fn load(&self, items: &[([u8; 16], Vec<u8>)]) {
            let mut b = rocksdb::WriteBatch::default();
            for (k, v) in items {
                b.put(k, v);
            }
            self.db.write_opt(b, &self.sync).expect("rocksdb write");
        }
        fn compact(&mut self) {
            self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        }
    }
}
