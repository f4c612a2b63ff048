//! Commands that need neither the keyspace nor the connection: PING ECHO TIME SELECT. They may be
//! queued in MULTI and run inside EXEC's transaction like any other.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::parse::bulk;
use crate::reply::Reply;

/// PING [message].
pub(crate) fn ping(args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::Status("PONG"),
        2 => bulk(&args[1]),
        _ => super::wrong_arity("ping"),
    }
}

/// ECHO message.
pub(crate) fn echo(args: &[Bytes]) -> Reply {
    bulk(&args[1])
}

/// TIME: seconds and microseconds, as bulk strings.
pub(crate) fn time(_args: &[Bytes]) -> Reply {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string().into_bytes()),
        Reply::bulk(now.subsec_micros().to_string().into_bytes()),
    ])
}

/// SELECT index: only database 0 exists.
pub(crate) fn select(args: &[Bytes]) -> Reply {
    super::parse::database_zero(&args[1]).map_or_else(|e| e, |()| Reply::OK)
}
