//! CONFIG SET appendfsync switches the running store's sync mode: write-back stops syncing per
//! write, and the switch back to always syncs the backlog and then every write. (The promises of
//! each mode across a crash are tested on the simulated file system in the core crate,
//! tests/sync_mode_switch.rs.)

mod common;

use std::sync::Arc;

use common::TestServer;
use ferrocask::{Options, Store, SyncMode};
use ferrocask_server::Config;

fn set(conn: &mut redis::Connection, key: usize) {
    redis::cmd("SET").arg(key).arg("v").exec(conn).unwrap();
}

#[test]
fn config_set_appendfsync_switches_the_stores_sync_mode_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_with(dir.path(), Options::default()).unwrap());
    let server = TestServer::start_on(Config::default(), store.clone(), dir);
    let mut conn = plain(&server);
    redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("everysec").exec(&mut conn).unwrap();
    assert!(matches!(store.sync_mode(), SyncMode::Every(_)));
    let syncs = store.stats().syncs;
    for key in 0..100 {
        set(&mut conn, key);
    }
    // The background thread syncs about once a second meanwhile, not once per write.
    assert!(store.stats().syncs - syncs < 10, "{} syncs for 100 write-back writes", store.stats().syncs - syncs);
    redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").exec(&mut conn).unwrap();
    assert_eq!(store.sync_mode(), SyncMode::Always);
    // Records count once a sync covered them: all 100 write-back ones are durable now.
    assert_eq!(store.stats().records_written, 100, "the backlog is synced");
    let syncs = store.stats().syncs;
    for key in 0..20 {
        set(&mut conn, key);
    }
    assert_eq!(store.stats().syncs - syncs, 20, "one sync per write again (one client, no group to share)");
    let value: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("appendfsync").query(&mut conn).unwrap();
    assert_eq!(value, ["appendfsync", "always"]);
}

/// Adversary: an operator's single-node habit on a cluster member, at run time. Its log always
/// syncs before it acknowledges (that is what a majority's copy means): everysec is refused
/// with the reason, and nothing changes.
#[test]
fn a_cluster_member_refuses_config_set_appendfsync_everysec() {
    let cluster = common::TestCluster::start(1);
    let mut conn = redis::Client::open(format!("redis://{}/", cluster.addrs[0])).unwrap().get_connection().unwrap();
    let refused = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("everysec").exec(&mut conn).unwrap_err();
    assert!(refused.to_string().contains("appendfsync everysec applies to a single node"), "{refused}");
    let value: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("appendfsync").query(&mut conn).unwrap();
    assert_eq!(value, ["appendfsync", "always"]);
    redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").exec(&mut conn).unwrap();
}

/// A redis crate connection to the server's plain listener.
fn plain(server: &TestServer) -> redis::Connection {
    redis::Client::open(server.url()).unwrap().get_connection().unwrap()
}
