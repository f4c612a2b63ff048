//! What an operator reads off a running server: INFO's fields (the ones Redis clients,
//! `redis-cli --stat` and exporters read), SLOWLOG in Redis 7.0's format, and `redis-cli --stat`
//! and `--latency` themselves (redis-cli must be installed, as for the differential test).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{parse, RawClient, TestServer, R};
use ferrocask::Options;
use ferrocask_server::Config;

fn text(reply: &[u8]) -> String {
    match parse(reply) {
        R::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// INFO's `field:value` lines.
fn info(c: &mut RawClient, args: &[&str]) -> HashMap<String, String> {
    let mut words = vec!["INFO"];
    words.extend_from_slice(args);
    let body = text(&c.cmd(&words));
    body.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn num(fields: &HashMap<String, String>, name: &str) -> u64 {
    fields.get(name).unwrap_or_else(|| panic!("INFO has no {name}: {fields:?}")).parse().unwrap()
}

/// `calls=2,usec=37,...` as a map.
fn pairs(line: &str) -> HashMap<String, String> {
    line.split(',').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn info_fields_are_present_and_count_what_happened() {
    let server = TestServer::start();
    let mut c = server.raw();
    let before = info(&mut c, &[]);
    for field in ["run_id", "tcp_port", "uptime_in_seconds", "process_id", "executable", "connected_clients"] {
        assert!(before.contains_key(field), "INFO server/clients lack {field}");
    }
    assert_eq!(before["run_id"].len(), 40);
    assert!(before["run_id"].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(num(&before, "tcp_port"), u64::from(server.addr.port()));
    assert_eq!(num(&before, "process_id"), u64::from(std::process::id()));
    assert_eq!(before["blocked_clients"], "0");
    assert_eq!(before["role"], "master");
    assert_eq!(before["connected_slaves"], "0");
    assert_eq!(before["maxmemory"], "0");
    assert_eq!(before["aof_enabled"], "1");
    assert!(before["used_cpu_user"].parse::<f64>().unwrap() >= 0.0);
    assert!(before["used_cpu_sys"].parse::<f64>().unwrap() >= 0.0);
    #[cfg(target_os = "linux")]
    {
        assert!(num(&before, "used_memory") > 0, "RSS read from /proc/self/statm");
        assert!(num(&before, "used_memory_rss") > 0);
        assert!(before["used_memory_human"].ends_with(['K', 'M', 'G']), "{}", before["used_memory_human"]);
    }
    assert!(before.contains_key("ferrocask_index_bytes"), "the index's tables (none allocated while empty)");
    assert!(!before.contains_key("cmdstat_info"), "commandstats is not a default section (as in Redis)");

    assert_eq!(parse(&c.cmd(&["SET", "ttl", "1", "EX", "100"])), R::Simple(b"OK".to_vec()));
    assert_eq!(parse(&c.cmd(&["SET", "plain", "2"])), R::Simple(b"OK".to_vec()));
    assert_eq!(parse(&c.cmd(&["GET", "plain"])), R::Bulk(b"2".to_vec()));
    assert_eq!(parse(&c.cmd(&["GET", "absent"])), R::Null);
    assert!(matches!(parse(&c.cmd(&["GET"])), R::Error(_)), "wrong arity: a rejected call");
    assert!(matches!(parse(&c.cmd(&["INCR", "plain", "x"])), R::Error(_)));
    assert!(matches!(parse(&c.cmd(&["INCRBY", "plain", "x"])), R::Error(_)), "a failed call");

    let after = info(&mut c, &["everything"]);
    assert!(num(&after, "ferrocask_index_bytes") > 0, "the index's tables, once it holds keys");
    assert!(
        num(&after, "total_commands_processed") >= num(&before, "total_commands_processed") + 8,
        "seven commands and one INFO since"
    );
    assert_eq!(num(&after, "keyspace_hits"), 1);
    assert_eq!(num(&after, "keyspace_misses"), 1);
    assert!(num(&after, "total_error_replies") >= 3);
    let keyspace = pairs(&after["db0"]);
    assert_eq!(keyspace["keys"], "2");
    assert_eq!(keyspace["expires"], "1", "the key with a TTL");
    let avg_ttl: u64 = keyspace["avg_ttl"].parse().unwrap();
    assert!(avg_ttl > 0 && avg_ttl <= 100_000, "avg_ttl {avg_ttl} ms of a 100 s TTL");
    let get = pairs(&after["cmdstat_get"]);
    assert_eq!(get["calls"], "2");
    assert_eq!(get["rejected_calls"], "1");
    assert_eq!(get["failed_calls"], "0");
    assert!(get["usec_per_call"].contains('.'), "two decimals, as Redis: {}", get["usec_per_call"]);
    let set = pairs(&after["cmdstat_set"]);
    assert_eq!(set["calls"], "2", "writes are counted once durable");
    let incrby = pairs(&after["cmdstat_incrby"]);
    assert_eq!((incrby["calls"].as_str(), incrby["failed_calls"].as_str()), ("1", "1"));

    // MULTI/EXEC: each queued command counts as a call of its own.
    for words in [&["MULTI"][..], &["GET", "plain"], &["SET", "k", "v"]] {
        c.cmd(words);
    }
    assert!(matches!(parse(&c.cmd(&["EXEC"])), R::Array(_)));
    let after_exec = info(&mut c, &["commandstats"]);
    assert_eq!(pairs(&after_exec["cmdstat_get"])["calls"], "3");
    assert_eq!(pairs(&after_exec["cmdstat_set"])["calls"], "3");
    assert_eq!(pairs(&after_exec["cmdstat_exec"])["calls"], "1");
    assert!(!after_exec.contains_key("db0"), "only the section asked for");

    assert_eq!(parse(&c.cmd(&["CONFIG", "RESETSTAT"])), R::Simple(b"OK".to_vec()));
    let reset = info(&mut c, &["all"]);
    assert_eq!(num(&reset, "keyspace_hits"), 0);
    assert!(!reset.contains_key("cmdstat_get"), "commandstats start again: {reset:?}");
}

#[test]
fn slowlog_records_commands_in_redis_format_and_reset_empties_it() {
    let config = Config { slowlog_log_slower_than_us: 0, ..Config::default() };
    let server = TestServer::start_with(config, Options::default());
    let stream = TcpStream::connect(server.addr).unwrap();
    let me = stream.local_addr().unwrap().to_string();
    let mut c = RawClient::from_stream(stream);
    assert_eq!(parse(&c.cmd(&["CLIENT", "SETNAME", "observer"])), R::Simple(b"OK".to_vec()));
    let long = "x".repeat(130);
    c.cmd(&["SET", "k", &long]);
    let many: Vec<String> = std::iter::once("DEL".to_string()).chain((1..40).map(|i| format!("k{i}"))).collect();
    c.cmd(&many);
    c.cmd(&["AUTH", "secret"]);

    let R::Array(entries) = parse(&c.cmd(&["SLOWLOG", "GET", "-1"])) else { panic!("SLOWLOG GET is an array") };
    assert_eq!(entries.len(), 4, "CLIENT SETNAME, SET, DEL, AUTH: {entries:?}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let fields = |entry: &R| match entry {
        R::Array(f) if f.len() == 6 => f.clone(),
        other => panic!("an entry has 6 fields: {other:?}"),
    };
    let args = |f: &[R]| match &f[3] {
        R::Array(a) => a
            .iter()
            .map(|a| if let R::Bulk(b) = a { String::from_utf8(b.clone()).unwrap() } else { panic!() })
            .collect::<Vec<_>>(),
        other => panic!("arguments are an array: {other:?}"),
    };
    // Newest first: AUTH, DEL, SET, CLIENT.
    let auth = fields(&entries[0]);
    assert_eq!(args(&auth), ["AUTH", "(redacted)"], "a password never reaches the slow log");
    let del = fields(&entries[1]);
    let del_args = args(&del);
    assert_eq!(del_args.len(), 32);
    assert_eq!(del_args[30], "k30");
    assert_eq!(del_args[31], "... (9 more arguments)", "40 arguments: 31 kept");
    let set = fields(&entries[2]);
    let R::Int(id) = set[0] else { panic!("id") };
    let R::Int(when) = set[1] else { panic!("timestamp") };
    let R::Int(duration) = set[2] else { panic!("duration") };
    assert_eq!(id, 1, "ids count from 0: CLIENT SETNAME was 0");
    assert!((now - 60..=now).contains(&when), "a Unix time in seconds: {when}");
    assert!(duration >= 0);
    assert_eq!(args(&set), ["SET".to_string(), "k".to_string(), format!("{}... (2 more bytes)", "x".repeat(128))]);
    assert_eq!(set[4], R::Bulk(me.into_bytes()), "the client's address");
    assert_eq!(set[5], R::Bulk(b"observer".to_vec()), "the client's name");

    let R::Array(two) = parse(&c.cmd(&["SLOWLOG", "GET", "2"])) else { panic!() };
    assert_eq!(two.len(), 2);
    assert_eq!(
        parse(&c.cmd(&["SLOWLOG", "GET", "-2"])),
        R::Error(b"ERR count should be greater than or equal to -1".to_vec())
    );
    assert!(matches!(parse(&c.cmd(&["SLOWLOG", "LEN"])), R::Int(n) if n >= 6));
    assert_eq!(parse(&c.cmd(&["SLOWLOG", "RESET"])), R::Simple(b"OK".to_vec()));
    // As in Redis with a threshold of 0: the log holds RESET itself, and nothing before it.
    assert_eq!(parse(&c.cmd(&["SLOWLOG", "LEN"])), R::Int(1));
    let R::Array(left) = parse(&c.cmd(&["SLOWLOG", "GET"])) else { panic!() };
    assert_eq!(args(&fields(&left[1])), ["SLOWLOG", "RESET"]);
    let R::Array(help) = parse(&c.cmd(&["SLOWLOG", "HELP"])) else { panic!() };
    assert!(matches!(&help[0], R::Simple(l) if l.starts_with(b"SLOWLOG <subcommand>")));
}

#[test]
fn slowlog_with_a_negative_threshold_records_nothing() {
    let config = Config { slowlog_log_slower_than_us: -1, ..Config::default() };
    let server = TestServer::start_with(config, Options::default());
    let mut c = server.raw();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["PING"]);
    assert_eq!(parse(&c.cmd(&["SLOWLOG", "LEN"])), R::Int(0));
}

/// Runs `redis-cli` with `args` against `port`, its stdout line-buffered (`stdbuf`), and
/// returns its first `lines` lines; it is killed then (`--stat` never ends by itself).
fn redis_cli_lines(port: u16, args: &[&str], lines: usize) -> Vec<String> {
    let mut child = Command::new("stdbuf")
        .args(["-oL", "redis-cli", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("stdbuf and redis-cli (apt-get install redis-tools coreutils)");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let got: Vec<String> = (0..lines).map_while(|_| rx.recv_timeout(Duration::from_secs(30)).ok()).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got.len(), lines, "redis-cli printed {got:?}");
    got
}

/// Regression (issue 25): `redis-cli --stat` printed `--9223372036854775808B` for memory and a
/// negative request count (fields INFO did not have). Every figure must now be a plain number.
#[test]
fn redis_cli_stat_and_latency_print_sane_figures() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.cmd(&["SET", "a", "1"]);
    // Two header lines, then one line per interval.
    let lines = redis_cli_lines(server.addr.port(), &["--stat", "-i", "0.1"], 5);
    let mut requests = Vec::new();
    for line in &lines[2..] {
        assert!(!line.contains('-'), "a negative or missing figure: {line:?}");
        let cols: Vec<&str> = line.split_whitespace().collect();
        // keys, mem, clients, blocked, requests, (+delta), connections
        assert_eq!(cols.len(), 7, "{line:?}");
        assert_eq!(cols[0], "1", "one key");
        let mem = cols[1];
        assert!(mem.ends_with(['B', 'K', 'M', 'G']) && mem[..mem.len() - 1].parse::<f64>().is_ok(), "{mem}");
        #[cfg(target_os = "linux")]
        assert_ne!(mem, "0B", "RSS");
        assert!(cols[2].parse::<u64>().unwrap() >= 2, "this test's client and redis-cli");
        assert_eq!(cols[3], "0", "blocked clients");
        requests.push(cols[4].parse::<u64>().unwrap());
    }
    assert!(requests.windows(2).all(|w| w[1] > w[0]), "each INFO is a request: {requests:?}");

    // --latency --raw pings for a second, then prints `min max avg samples` and exits.
    let latency = redis_cli_lines(server.addr.port(), &["--latency", "--raw"], 1);
    let figures: Vec<f64> = latency[0].split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(figures.len(), 4, "{latency:?}");
    let (min, max, avg, samples) = (figures[0], figures[1], figures[2], figures[3]);
    assert!(samples >= 1.0 && min >= 0.0 && min <= avg && avg <= max, "{latency:?}");
}

#[test]
fn latency_is_off_by_default_and_answers_as_redis() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(parse(&c.cmd(&["LATENCY", "LATEST"])), R::Array(Vec::new()), "latency-monitor-threshold 0: off");
    assert_eq!(parse(&c.cmd(&["LATENCY", "HISTORY", "command"])), R::Array(Vec::new()));
    assert_eq!(parse(&c.cmd(&["LATENCY", "RESET"])), R::Int(0));
    let R::Array(help) = parse(&c.cmd(&["LATENCY", "HELP"])) else { panic!("LATENCY HELP is an array") };
    assert!(matches!(&help[0], R::Simple(l) if l.starts_with(b"LATENCY <subcommand>")));
    assert!(matches!(parse(&c.cmd(&["LATENCY", "DOCTOR"])), R::Error(_)));
    assert_eq!(
        parse(&c.cmd(&["LATENCY", "LATEST", "x"])),
        R::Error(b"ERR wrong number of arguments for 'latency|latest' command".to_vec())
    );
}
