//! The write path where the connection's own thread leads its writes' group commit
//! (`commit.rs`): a pipelined batch of writes is queued whole and led by a committer task on the
//! runtime, not by the store's driver thread. The promises do not change. Adversaries: a reader
//! on another connection while the batch's group is parked at its sync, and the batch's own
//! client, which must get no reply before then.

mod common;

#[path = "../../tests/common/parking.rs"]
#[allow(unused_imports)]
mod parking;

use std::io::Read;
use std::sync::Arc;

use common::{encode, parse, TestServer, R};
use ferrocask::testing::SimFs;
use ferrocask::{Options, Store, SyncMode};
use ferrocask_server::Config;
use parking::{ParkOp, ParkingVfs, Release, Rule};

const BATCH: usize = 20;

/// Adversary: a reader on another connection, and the writer's own socket, while a pipelined
/// batch of SETs (one socket write) has its group parked at the sync. The reader sees none of the
/// batch and the writer has no reply; once the sync returns, every SET is acknowledged and the
/// reader sees all of them.
#[test]
fn a_pipelined_batch_is_neither_visible_nor_acknowledged_before_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let parking = ParkingVfs::new(SimFs::new());
    let options = Options { sync: SyncMode::Always, auto_compact: false, ..Options::default() };
    let store = Arc::new(Store::open_on(parking.clone(), dir.path(), options).unwrap());
    let server = TestServer::start_on(Config::default(), store, dir);
    let mut writer = server.raw();
    let mut reader = server.raw();
    assert_eq!(reader.cmd(&["PING"]), b"+PONG\r\n");
    let keys: Vec<String> = (0..BATCH).map(|i| format!("batch:{i}")).collect();
    let mut batch = Vec::new();
    for key in &keys {
        batch.extend(encode(&["SET", key, "v"]));
    }
    let gate = parking.arm(Rule::new(ParkOp::Sync, ".seg"));
    writer.send_raw(&batch);
    assert!(gate.wait_parked(), "the batch's group reached its sync");

    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    let seen = parse(&reader.cmd(&mget));
    assert_eq!(seen, R::Array(vec![R::Null; BATCH]), "a reader saw a write whose sync has not returned");
    assert_eq!(reader.cmd(&["DBSIZE"]), b":0\r\n");
    writer.stream.set_nonblocking(true).unwrap();
    let early = writer.stream.read(&mut [0u8; 64]);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the writer got a reply before its write was durable: {early:?}"
    );
    writer.stream.set_nonblocking(false).unwrap();

    gate.release(Release::Proceed);
    for key in &keys {
        assert_eq!(writer.reply().unwrap(), b"+OK\r\n", "SET {key}");
    }
    let seen = parse(&reader.cmd(&mget));
    assert_eq!(seen, R::Array(vec![R::Bulk(b"v".to_vec()); BATCH]));
}
