//! Replays the `server_dispatch` fuzz target's seeds (`fuzz/corpus/server_dispatch/`) and saved
//! findings (`fuzz/regressions/server_dispatch/`) through its check, on the stable toolchain.

#[path = "../../fuzz/checks/server_dispatch.rs"]
mod server_dispatch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn replay_server_dispatch() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus = files(&fuzz.join("corpus/server_dispatch"));
    assert!(!corpus.is_empty(), "no seed corpus for server_dispatch");
    let all: Vec<PathBuf> = corpus.into_iter().chain(files(&fuzz.join("regressions/server_dispatch"))).collect();
    let failed: Vec<String> = all
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| server_dispatch::check(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} inputs failed: {failed:#?}", failed.len(), all.len());
}

/// Bytes no seed holds, in case the corpus shrinks: every prefix of a mixed session.
#[test]
fn every_prefix_of_a_session_is_handled() {
    let session = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n10\r\nMULTI\r\nINCR k\r\nEXEC\r\nHELLO 3\r\nGET k\r\n";
    for end in 0..=session.len() {
        server_dispatch::check(&session[..end]);
    }
}

/// The large-values seed reaches what it is for: the EXEC that outgrows one batch is discarded
/// whole, FLUSHDB empties the store, and the oversized request ends the session.
#[test]
fn the_large_values_seed_reaches_its_cases() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let data = std::fs::read(fuzz.join("corpus/server_dispatch/large-values")).unwrap();
    let options =
        ferrocask::Options { segment_bytes: 64 << 10, preallocate_bytes: 0, auto_compact: false, ..Default::default() };
    let fs = ferrocask::testing::SimFs::new();
    let store = ferrocask::Store::open_on(fs, std::path::Path::new("/fuzz"), options).unwrap();
    let out =
        String::from_utf8_lossy(&ferrocask_server::fuzzing::run_bytes(std::sync::Arc::new(store), &data)).into_owned();
    assert!(out.contains("-EXECABORT Transaction discarded because of: the writes"), "{out}");
    assert!(out.contains("-ERR string exceeds maximum allowed size"), "APPEND past the value limit: {out}");
    assert!(
        out.ends_with("+OK\r\n:0\r\n-ERR Protocol error: request too large\r\n"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
}

/// Seeded random requests of the collection commands (issue 23) with arguments drawn from
/// extremes (huge and negative counts and indexes, empty and binary members, wrong types):
/// what `server_dispatch` must survive, without the fuzzer (not on CI's stable toolchain).
#[test]
fn collection_commands_with_random_arguments_are_handled() {
    let names = [
        "HSET",
        "HMSET",
        "HSETNX",
        "HGET",
        "HMGET",
        "HGETALL",
        "HDEL",
        "HLEN",
        "HEXISTS",
        "HKEYS",
        "HVALS",
        "HINCRBY",
        "HINCRBYFLOAT",
        "HSTRLEN",
        "HRANDFIELD",
        "HSCAN",
        "SADD",
        "SREM",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SPOP",
        "SRANDMEMBER",
        "SMOVE",
        "SINTER",
        "SINTERCARD",
        "SUNION",
        "SDIFF",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
        "SSCAN",
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LPOP",
        "RPOP",
        "LLEN",
        "LRANGE",
        "LINDEX",
        "LSET",
        "LINSERT",
        "LREM",
        "LTRIM",
        "LPOS",
        "LMOVE",
        "RPOPLPUSH",
        "LMPOP",
        "TYPE",
        "DEL",
        "RENAME",
        "COPY",
        "EXPIRE",
        "SET",
        "GET",
        "INCR",
        "APPEND",
        "SCAN",
        "KEYS",
        "DBSIZE",
        "MULTI",
        "EXEC",
        "HELLO",
    ];
    let words: &[&[u8]] = &[
        b"k",
        b"h",
        b"s",
        b"l",
        b"0",
        b"1",
        b"-1",
        b"2",
        b"3",
        b"-3",
        b"100",
        b"-100",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"4611686018427387904",
        b"-4611686018427387905",
        b"x",
        b"",
        b"\xff\x00",
        b"1.5",
        b"inf",
        b"LEFT",
        b"RIGHT",
        b"BEFORE",
        b"AFTER",
        b"COUNT",
        b"LIMIT",
        b"RANK",
        b"MAXLEN",
        b"MATCH",
        b"*",
        b"WITHVALUES",
        b"TYPE",
        b"hash",
        b"REPLACE",
        b"3",
    ];
    let mut rng = ferrocask::testing::Rng::new(0x0c01_1ec7);
    for _ in 0..2000 {
        let mut input = Vec::new();
        for _ in 0..1 + rng.below(12) {
            let name = names[rng.below(names.len() as u64) as usize].as_bytes();
            let argc = rng.below(7) as usize;
            let mut args: Vec<&[u8]> = vec![name];
            args.extend((0..argc).map(|_| words[rng.below(words.len() as u64) as usize]));
            input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend_from_slice(b"\r\n");
            }
        }
        server_dispatch::check(&input);
    }
}

/// Regression: the fuzzer's dispatch has no runtime and no other client. A blocking pop there
/// must answer as inside MULTI (a forever BLPOP hung it; a timed one panicked without a timer).
#[test]
fn a_blocking_pop_in_the_fuzzer_never_blocks() {
    let fs = ferrocask::testing::SimFs::new();
    let options = ferrocask::Options { segment_bytes: 64 << 10, preallocate_bytes: 0, ..Default::default() };
    let store = ferrocask::Store::open_on(fs, std::path::Path::new("/fuzz"), options).unwrap();
    let input = b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*3\r\n$8\r\nBZPOPMIN\r\n$1\r\nz\r\n$3\r\n0.5\r\n";
    let out = ferrocask_server::fuzzing::run_bytes(std::sync::Arc::new(store), input);
    assert_eq!(out, b"*-1\r\n*-1\r\n");
}
