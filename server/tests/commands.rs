//! Every supported command through a real client library (the `redis` crate), over RESP2 and
//! RESP3, including the server and connection commands the differential test does not compare.

mod common;

use common::TestServer;
use redis::{Connection, Value};

fn connect(server: &TestServer, resp3: bool) -> Connection {
    let url = if resp3 { format!("{}?protocol=resp3", server.url()) } else { server.url() };
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// A reply rendered compactly: `nil`, `5`, `"text"`, `OK`, `+STATUS`, `[a, b]`, `{k: v}`, `ERR:msg`.
fn render(value: &Value) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Value::Okay => "OK".into(),
        Value::SimpleString(s) => format!("+{s}"),
        Value::Array(items) | Value::Set(items) => {
            format!("[{}]", items.iter().map(render).collect::<Vec<_>>().join(", "))
        }
        Value::Map(pairs) => {
            format!(
                "{{{}}}",
                pairs.iter().map(|(k, v)| format!("{}: {}", render(k), render(v))).collect::<Vec<_>>().join(", ")
            )
        }
        Value::VerbatimString { text, .. } => format!("verbatim {text:?}"),
        Value::ServerError(e) => format!("ERR:{}", e.details().unwrap_or("")),
        other => format!("{other:?}"),
    }
}

fn run(con: &mut Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(con) {
        Ok(v) => render(&v),
        Err(e) => format!("ERR:{}", e.detail().unwrap_or(&e.to_string())),
    }
}

fn check(con: &mut Connection, args: &[&str], expected: &str) {
    assert_eq!(run(con, args), expected, "{args:?}");
}

/// The string, keyspace, expiry and transaction commands: the same replies in both protocols
/// (as the `redis` crate renders them).
fn data_commands(con: &mut Connection) {
    let c = con;
    check(c, &["SET", "s", "hello"], "OK");
    check(c, &["GET", "s"], "\"hello\"");
    check(c, &["GET", "missing"], "nil");
    check(c, &["SET", "s", "x", "NX"], "nil");
    check(c, &["SET", "s", "world", "XX", "GET"], "\"hello\"");
    check(c, &["SET", "t", "1", "EX", "100"], "OK");
    check(c, &["SET", "t", "2", "KEEPTTL"], "OK");
    check(c, &["TTL", "t"], "100");
    check(c, &["SET", "t", "3", "PX", "100000"], "OK");
    check(c, &["SET", "t", "4", "EXAT", "4102444800"], "OK");
    check(c, &["EXPIRETIME", "t"], "4102444800");
    check(c, &["SET", "t", "5", "PXAT", "4102444800123"], "OK");
    check(c, &["PEXPIRETIME", "t"], "4102444800123");
    check(c, &["SET", "t", "6", "EX", "0"], "ERR:invalid expire time in 'set' command");
    check(c, &["SETNX", "s", "x"], "0");
    check(c, &["SETNX", "n", "x"], "1");
    check(c, &["SETEX", "e", "100", "v"], "OK");
    check(c, &["PSETEX", "e", "100000", "v"], "OK");
    check(c, &["GETSET", "e", "w"], "\"v\"");
    check(c, &["TTL", "e"], "-1");
    check(c, &["GETDEL", "e"], "\"w\"");
    check(c, &["GETDEL", "e"], "nil");
    check(c, &["GETEX", "s", "EX", "50"], "\"world\"");
    check(c, &["TTL", "s"], "50");
    check(c, &["GETEX", "s", "PERSIST"], "\"world\"");
    check(c, &["TTL", "s"], "-1");
    check(c, &["MSET", "a", "1", "b", "2"], "OK");
    check(c, &["MGET", "a", "b", "zz"], "[\"1\", \"2\", nil]");
    check(c, &["MSETNX", "a", "9", "c", "3"], "0");
    check(c, &["MSETNX", "c", "3", "d", "4"], "1");
    check(c, &["APPEND", "a", "23"], "3");
    check(c, &["STRLEN", "a"], "3");
    check(c, &["GETRANGE", "s", "1", "-2"], "\"orl\"");
    check(c, &["SUBSTR", "s", "0", "0"], "\"w\"");
    check(c, &["SETRANGE", "s", "7", "!"], "8");
    check(c, &["GET", "s"], "\"world\\0\\0!\"");
    check(c, &["INCR", "a"], "124");
    check(c, &["INCRBY", "a", "-24"], "100");
    check(c, &["DECR", "a"], "99");
    check(c, &["DECRBY", "a", "9"], "90");
    check(c, &["INCR", "s"], "ERR:value is not an integer or out of range");
    check(c, &["INCRBYFLOAT", "a", "0.5"], "\"90.5\"");
    check(c, &["SETBIT", "bits", "7", "1"], "0");
    check(c, &["SETBIT", "bits", "7", "1"], "1");
    check(c, &["GETBIT", "bits", "7"], "1");
    check(c, &["BITCOUNT", "bits"], "1");
    check(c, &["BITCOUNT", "s", "0", "0", "BIT"], "0");
    check(c, &["EXISTS", "a", "b", "zz", "a"], "3");
    check(c, &["TOUCH", "a", "zz"], "1");
    check(c, &["TYPE", "a"], "+string");
    check(c, &["TYPE", "zz"], "+none");
    check(c, &["RENAME", "a", "a2"], "OK");
    check(c, &["RENAMENX", "a2", "b"], "0");
    check(c, &["COPY", "a2", "a3"], "1");
    check(c, &["COPY", "a2", "a3"], "0");
    check(c, &["COPY", "a2", "a3", "REPLACE"], "1");
    check(c, &["DEL", "a3", "zz"], "1");
    check(c, &["UNLINK", "a2"], "1");
    let keys = run(c, &["KEYS", "[bc]"]);
    assert!(keys == "[\"b\", \"c\"]" || keys == "[\"c\", \"b\"]", "{keys}");
    check(c, &["EXPIRE", "b", "100"], "1");
    check(c, &["EXPIRE", "b", "50", "GT"], "0");
    check(c, &["PEXPIRE", "b", "50000", "LT"], "1");
    let pttl: i64 = run(c, &["PTTL", "b"]).parse().unwrap();
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");
    check(c, &["EXPIREAT", "b", "4102444800", "XX"], "1");
    check(c, &["PEXPIREAT", "b", "4102444800000", "NX"], "0");
    check(c, &["PERSIST", "b"], "1");
    check(c, &["PERSIST", "b"], "0");
    check(c, &["EXPIRE", "b", "-1"], "1");
    check(c, &["EXISTS", "b"], "0");
    check(c, &["TTL", "b"], "-2");
    check(c, &["MULTI"], "OK");
    check(c, &["INCR", "m"], "+QUEUED");
    check(c, &["INCR", "m"], "+QUEUED");
    check(c, &["EXEC"], "[1, 2]");
    check(c, &["MULTI"], "OK");
    check(c, &["SET", "m", "x"], "+QUEUED");
    check(c, &["DISCARD"], "OK");
    check(c, &["GET", "m"], "\"2\"");
    check(c, &["WATCH", "m"], "OK");
    check(c, &["UNWATCH"], "OK");
    check(c, &["DBSIZE"], "7");
    let scan = run(c, &["SCAN", "0", "COUNT", "1000"]);
    assert!(scan.starts_with("[\"0\", ["), "{scan}");
    assert_ne!(run(c, &["RANDOMKEY"]), "nil");
    check(c, &["FLUSHDB"], "OK");
    check(c, &["DBSIZE"], "0");
    check(c, &["RANDOMKEY"], "nil");
    check(c, &["SET", "x", "1"], "OK");
    check(c, &["FLUSHALL"], "OK");
    check(c, &["GET", "x"], "nil");
}

/// Connection and server commands.
fn server_commands(con: &mut Connection, resp3: bool) {
    let c = con;
    check(c, &["PING"], "+PONG");
    check(c, &["PING", "hi"], "\"hi\"");
    check(c, &["ECHO", "hi"], "\"hi\"");
    check(c, &["SELECT", "0"], "OK");
    check(c, &["SELECT", "1"], "ERR:DB index is out of range");
    check(c, &["CLIENT", "SETNAME", "tester"], "OK");
    check(c, &["CLIENT", "GETNAME"], "\"tester\"");
    check(c, &["CLIENT", "SETNAME", "a b"], "ERR:Client names cannot contain spaces, newlines or special characters.");
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(c).unwrap();
    assert!(id > 0);
    let info = run(c, &["CLIENT", "INFO"]);
    assert!(info.contains(&format!("id={id} ")) && info.contains("name=tester"), "{info}");
    let list = run(c, &["CLIENT", "LIST"]);
    assert!(list.contains(&format!("id={id} ")), "{list}");
    check(c, &["CLIENT", "NOPE"], "ERR:unknown subcommand 'NOPE'. Try CLIENT HELP.");
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(c).unwrap();
    assert!(count >= 60, "{count}");
    let info = run(c, &["COMMAND", "INFO", "get", "nosuch"]);
    assert!(info.starts_with("[[\"get\", 2, ["), "{info}");
    assert!(info.ends_with("nil]"), "{info}");
    assert!(run(c, &["COMMAND", "DOCS", "get"]).contains("summary"));
    let all = run(c, &["INFO"]);
    for section in
        ["# Server", "# Clients", "# Persistence", "# Stats", "# Keyspace", "redis_version:", "connected_clients:"]
    {
        assert!(all.contains(section), "INFO lacks {section}: {all}");
    }
    let clients = run(c, &["INFO", "clients"]);
    assert!(clients.contains("connected_clients:") && !clients.contains("# Server"), "{clients}");
    let config = run(c, &["CONFIG", "GET", "appendfsync"]);
    assert_eq!(config, if resp3 { "{\"appendfsync\": \"always\"}" } else { "[\"appendfsync\", \"always\"]" });
    check(c, &["CONFIG", "SET", "timeout", "0"], "OK");
    check(c, &["CONFIG", "SET", "nope", "1"], "ERR:Unknown option or number of arguments for CONFIG SET - 'nope'");
    let time = run(c, &["TIME"]);
    assert!(time.starts_with("[\"1") || time.starts_with("[\"2"), "{time}");
    let hello = run(c, &["HELLO"]);
    assert!(hello.contains("\"proto\"") && hello.contains(if resp3 { "3" } else { "2" }), "{hello}");
    check(c, &["AUTH", "pw"], "ERR:AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    check(c, &["NOSUCH", "a"], "ERR:unknown command 'NOSUCH', with args beginning with: 'a' ");
    check(c, &["GET"], "ERR:wrong number of arguments for 'get' command");
}

#[test]
fn every_command_over_resp2() {
    let server = TestServer::start();
    let mut con = connect(&server, false);
    data_commands(&mut con);
    server_commands(&mut con, false);
}

#[test]
fn every_command_over_resp3() {
    let server = TestServer::start();
    let mut con = connect(&server, true);
    data_commands(&mut con);
    server_commands(&mut con, true);
}

#[test]
fn reset_and_quit_end_a_session_cleanly() {
    let server = TestServer::start();
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    assert_eq!(raw.cmd(&["QUIT"]), b"+OK\r\n");
    assert_eq!(raw.reply(), None, "closed after QUIT");
}

#[test]
fn a_pipeline_is_answered_in_order_and_reads_see_earlier_writes() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(common::encode(&["SET", "p", &i.to_string()]));
        batch.extend(common::encode(&["GET", "p"]));
        batch.extend(common::encode(&["INCR", "c"]));
    }
    raw.send_raw(&batch);
    for i in 0..50 {
        assert_eq!(raw.reply().unwrap(), b"+OK\r\n");
        let value = i.to_string();
        assert_eq!(raw.reply().unwrap(), format!("${}\r\n{value}\r\n", value.len()).into_bytes());
        assert_eq!(raw.reply().unwrap(), format!(":{}\r\n", i + 1).into_bytes());
    }
}

#[test]
fn inline_commands_work_as_from_telnet() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\r\n\r\nPING\n");
    assert_eq!(raw.reply().unwrap(), b"+OK\r\n");
    assert_eq!(raw.reply().unwrap(), b"$11\r\nhello world\r\n");
    assert_eq!(raw.reply().unwrap(), b"+PONG\r\n");
}

#[test]
fn exec_aborts_when_a_watched_key_changed() {
    let server = TestServer::start();
    let (mut a, mut b) = (server.raw(), server.raw());
    assert_eq!(a.cmd(&["SET", "w", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["WATCH", "w"]), b"+OK\r\n");
    assert_eq!(b.cmd(&["SET", "w", "2"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "3"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
    assert_eq!(a.cmd(&["GET", "w"]), b"$1\r\n2\r\n");
    assert_eq!(a.cmd(&["WATCH", "w"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "3"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
}
