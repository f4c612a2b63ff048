//! Tests of the state machine, each naming the adversary it plays.

use std::sync::Arc;

use ferrocask::{Expiry, Txn};
use openraft::testing::{blank_ent, log_id};
use openraft::{EntryPayload, RaftSnapshotBuilder};

use super::snapshot::{self, Step};
use super::*;
use crate::keys::is_reserved;
use crate::types::Applied;
use crate::Request;

/// A small text application: `SET k v [PX ms]`, `INCR k` (not idempotent: a repeat shows),
/// `EXISTS k` (its reply depends on the time), `PANIC`, `FLUSH` (deletes at most two keys a transaction,
/// answering `Continue` while more remain).
struct Text;

/// Keys `FLUSH` deletes in one transaction.
const FLUSH_KEYS_PER_TXN: usize = 2;

impl Apply for Text {
    fn apply(&self, txn: &mut Txn<'_>, command: &[u8]) -> Applied {
        let text = std::str::from_utf8(command).expect("text commands");
        let words: Vec<&str> = text.split(' ').collect();
        let ok = || Applied::Reply(b"OK".to_vec());
        match words[..] {
            ["SET", k, v] => {
                txn.put(k, v).unwrap();
                ok()
            }
            ["SET", k, v, "PX", ms] => {
                let ttl = Duration::from_millis(ms.parse().unwrap());
                txn.put_with_expiry(k, v, Expiry::After(ttl)).unwrap();
                ok()
            }
            ["INCR", k] => {
                let n: u64 = txn.get(k).map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap()) + 1;
                txn.put_with_expiry(k, n.to_string(), Expiry::Keep).unwrap();
                Applied::Reply(n.to_string().into_bytes())
            }
            ["PANIC"] => panic!("asked to"),
            ["EXISTS", k] => Applied::Reply(if txn.contains_key(k) { b"1".to_vec() } else { b"0".to_vec() }),
            ["FLUSH"] => {
                let keys: Vec<_> = txn.keys().into_iter().filter(|k| !is_reserved(k)).collect();
                for key in keys.iter().take(FLUSH_KEYS_PER_TXN) {
                    txn.delete(key).unwrap();
                }
                if keys.len() > FLUSH_KEYS_PER_TXN {
                    Applied::Continue
                } else {
                    ok()
                }
            }
            _ => panic!("unknown command {text:?}"),
        }
    }
}

fn open(dir: &Path) -> StateMachine {
    StateMachine::open(dir, Arc::new(Text)).unwrap()
}

fn normal(index: u64, now_ms: u64, commands: &[&str]) -> Entry<TypeConfig> {
    let commands = commands.iter().map(|c| c.as_bytes().to_vec()).collect();
    Entry { log_id: log_id(1, 0, index), payload: EntryPayload::Normal(Request { now_ms, commands }) }
}

fn replies(responses: &[Response]) -> Vec<Vec<String>> {
    let text = |r: &Vec<u8>| String::from_utf8(r.clone()).unwrap();
    responses.iter().map(|r| r.replies.iter().map(text).collect()).collect()
}

/// An application key: key, value, expiry.
type Row = (Vec<u8>, Vec<u8>, Option<u64>);

/// The application's keys with values and expiries, sorted, and the position.
fn dump(sm: &StateMachine) -> (Vec<Row>, Position) {
    let store = sm.store();
    let mut pairs: Vec<_> = store
        .keys()
        .filter(|k| !is_reserved(k))
        .filter_map(|k| store.get_with_expiry(&k).unwrap().map(|(v, e)| (k, v.into_vec(), e)))
        .collect();
    pairs.sort();
    (pairs, read_position(store).unwrap())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Times far from any wall clock (1970), one going back: the adversary is a replica that would
/// use its own clock, or a leader whose clock stepped back.
fn timed_log() -> Vec<Entry<TypeConfig>> {
    vec![
        normal(1, 1_000, &["SET a 1 PX 500", "SET b 2"]),
        blank_ent(1, 0, 2),
        normal(3, 900, &["SET c 3 PX 1000", "EXISTS a"]),
        normal(4, 1_499, &["EXISTS a", "INCR b"]),
        normal(5, 1_500, &["EXISTS a", "INCR b"]),
    ]
}

#[test]
fn replicas_applying_the_same_entries_in_different_batches_agree_whatever_the_wall_clock() {
    let rt = rt();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut whole, mut single) = (open(one.path()), open(two.path()));
    let together = rt.block_on(whole.apply(timed_log())).unwrap();
    let mut apart = Vec::new();
    for entry in timed_log() {
        apart.extend(rt.block_on(single.apply([entry])).unwrap());
    }
    assert_eq!(replies(&together), replies(&apart));
    assert_eq!(
        replies(&together),
        vec![vec!["OK", "OK"], vec![], vec!["OK", "1"], vec!["1", "3"], vec!["0", "4"]],
        "entry 3 runs at 1000 (time never goes back), entry 5 at a's expiry"
    );
    assert_eq!(dump(&whole), dump(&single));
    let (pairs, position) = dump(&whole);
    assert_eq!(position, Position { applied: Some(log_id(1, 0, 5)), partial: None, clock_ms: 1_500 });
    assert_eq!(
        pairs,
        vec![(b"b".to_vec(), b"4".to_vec(), None), (b"c".to_vec(), b"3".to_vec(), Some(2_000))],
        "the store reads at the state machine's clock: a expired at 1500, c lives until 2000"
    );
    assert_eq!(whole.clock_ms(), 1_500);
}

#[test]
fn an_entry_a_crash_cut_after_its_first_command_is_resumed_not_repeated() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    rt.block_on(sm.apply([normal(1, 10, &["INCR a"])])).unwrap();
    // What a crash leaves after the first command of entry 2 reached the store and the second
    // did not: its effect and the position that says so, written together.
    let cut = Position { applied: Some(log_id(1, 0, 1)), partial: Some((log_id(1, 0, 2), 1)), clock_ms: 20 };
    let bytes = encoded(&cut).unwrap();
    sm.store()
        .transaction(move |txn| {
            txn.put("a", "2")?;
            txn.put(POSITION, bytes)
        })
        .unwrap()
        .unwrap();
    drop(sm);
    let mut sm = open(dir.path());
    let (applied, _) = rt.block_on(sm.applied_state()).unwrap();
    assert_eq!(applied, Some(log_id(1, 0, 1)), "openraft is told to apply entry 2 again");
    let responses = rt.block_on(sm.apply([normal(2, 20, &["INCR a", "INCR b"])])).unwrap();
    assert_eq!(replies(&responses), vec![vec!["", "1"]], "nobody waits for the first reply after a restart");
    let (pairs, position) = dump(&sm);
    assert_eq!(pairs, vec![(b"a".to_vec(), b"2".to_vec(), None), (b"b".to_vec(), b"1".to_vec(), None)]);
    assert_eq!(position, Position { applied: Some(log_id(1, 0, 2)), partial: None, clock_ms: 20 });
}

#[test]
fn a_command_that_needs_many_transactions_finishes_before_the_commands_queued_behind_it() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let sets: Vec<String> = (0..7).map(|i| format!("SET k{i} v")).collect();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let responses = rt
        .block_on(sm.apply([normal(1, 1, &sets), normal(2, 2, &["FLUSH"]), normal(3, 3, &["SET after v", "INCR n"])]))
        .unwrap();
    assert_eq!(replies(&responses)[1..], [vec!["OK".to_string()], vec!["OK".to_string(), "1".to_string()]]);
    let (pairs, position) = dump(&sm);
    assert_eq!(pairs, vec![(b"after".to_vec(), b"v".to_vec(), None), (b"n".to_vec(), b"1".to_vec(), None)]);
    assert_eq!(position.applied, Some(log_id(1, 0, 3)));
}

#[test]
fn a_flush_cut_by_a_crash_between_its_transactions_runs_again_from_the_start() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    rt.block_on(sm.apply([normal(1, 1, &["SET a v", "SET b v", "SET c v"])])).unwrap();
    // The crash: the first transaction of FLUSH (entry 2) deleted two keys and, answering
    // Continue, left the position where it was.
    sm.store()
        .transaction(|txn| {
            txn.delete("a")?;
            txn.delete("b")
        })
        .unwrap()
        .unwrap();
    drop(sm);
    let mut sm = open(dir.path());
    rt.block_on(sm.apply([normal(2, 2, &["FLUSH"])])).unwrap();
    assert_eq!(dump(&sm).0, vec![]);
    assert_eq!(dump(&sm).1.applied, Some(log_id(1, 0, 2)));
}

/// A state machine in `dir` with the "old" state, and a snapshot of another with the "new" one.
fn old_and_new_snapshot(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
) -> (StateMachine, Snapshot<TypeConfig>, tempfile::TempDir) {
    let mut old = open(dir);
    rt.block_on(old.apply([normal(1, 100, &["SET old 1", "SET both old"])])).unwrap();
    let source_dir = tempfile::tempdir().unwrap();
    let mut source = open(source_dir.path());
    let log = [normal(1, 100, &["SET new 1 PX 10000", "SET both new", "SET gone x PX 5"]), normal(2, 200, &["INCR n"])];
    rt.block_on(source.apply(log)).unwrap();
    let snapshot = rt.block_on(source.build_snapshot()).unwrap();
    (old, snapshot, source_dir)
}

#[test]
fn a_snapshot_carries_expiries_and_the_clock_and_drops_what_expired_before_it() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, snapshot, _source) = old_and_new_snapshot(&rt, dir.path());
    let data: snapshot::SnapshotData = decode(snapshot.snapshot.get_ref()).unwrap();
    assert_eq!(data.position.clock_ms, 200);
    let keys: Vec<_> = data.pairs.iter().map(|p| (p.key.as_slice(), p.expires_ms)).collect();
    assert_eq!(keys, vec![(&b"both"[..], None), (b"n", None), (b"new", Some(10_100))], "gone expired at 105");
    rt.block_on(sm.install_snapshot(&snapshot.meta, snapshot.snapshot)).unwrap();
    assert_eq!(sm.store().get_with_expiry("new").unwrap().unwrap().1, Some(10_100));
    assert_eq!(sm.clock_ms(), 200);
    let at = |index, ms| normal(index, ms, &["EXISTS new"]);
    let responses = rt.block_on(sm.apply([at(3, 10_099), at(4, 10_100)])).unwrap();
    assert_eq!(replies(&responses), vec![vec!["1"], vec!["0"]]);
}

#[test]
fn an_install_interrupted_after_any_step_reopens_to_the_old_state_or_the_new() {
    let rt = rt();
    for stop in [Step::FileWritten, Step::Marked, Step::Cleared, Step::Filled, Step::Unmarked, Step::Renamed] {
        let dir = tempfile::tempdir().unwrap();
        let (sm, snapshot, _source) = old_and_new_snapshot(&rt, dir.path());
        let old = dump(&sm);
        let new_dir = tempfile::tempdir().unwrap();
        let mut new = open(new_dir.path());
        rt.block_on(new.install_snapshot(&snapshot.meta, snapshot.snapshot.clone())).unwrap();
        let new = dump(&new);
        let shared = &sm.shared;
        let bytes = snapshot.snapshot.get_ref().clone();
        snapshot::install(&shared.root, &shared.store, &shared.clock, &snapshot.meta, bytes, stop).unwrap();
        drop(sm); // the crash: the process dies with what it wrote (the store keeps it)
        let mut sm = open(dir.path());
        let expected = if stop == Step::FileWritten { &old } else { &new };
        assert_eq!(&dump(&sm), expected, "reopened after {stop:?}");
        let current = rt.block_on(sm.get_current_snapshot()).unwrap().map(|s| s.meta.snapshot_id);
        let expected = (stop != Step::FileWritten).then(|| snapshot.meta.snapshot_id.clone());
        assert_eq!(current, expected, "the current snapshot after {stop:?}");
        assert!(!dir.path().join(snapshot::INSTALLING_FILE).exists());
    }
}

#[test]
fn a_built_snapshot_is_the_current_one_and_the_store_is_durable_up_to_it() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    rt.block_on(sm.apply([normal(1, 5, &["SET a 1"]), blank_ent(1, 0, 2)])).unwrap();
    let built = rt.block_on(sm.build_snapshot()).unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 0, 2)));
    let current = rt.block_on(sm.get_current_snapshot()).unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.get_ref(), built.snapshot.get_ref());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(snapshot::BUILD_DIR_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "the copy is removed: {leftovers:?}");
}

#[test]
fn a_panicking_command_fails_the_batch_and_no_command_after_it_is_applied() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    // The adversary: an application bug. Were the commands queued behind it applied, the
    // position would claim the panicking one done, and a restart would skip it for good.
    let err = rt.block_on(sm.apply([normal(1, 1, &["INCR a", "PANIC", "INCR b"]), normal(2, 2, &["INCR c"])]));
    assert!(err.unwrap_err().to_string().contains("asked to"));
    let (pairs, position) = dump(&sm);
    assert_eq!(pairs, vec![(b"a".to_vec(), b"1".to_vec(), None)]);
    assert_eq!(position, Position { applied: None, partial: Some((log_id(1, 0, 1), 1)), clock_ms: 1 });
}

#[test]
fn an_entry_at_or_before_the_applied_position_is_refused() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    rt.block_on(sm.apply([normal(1, 1, &["INCR a"])])).unwrap();
    assert!(rt.block_on(sm.apply([normal(1, 1, &["INCR a"])])).is_err(), "applying twice would count twice");
    assert_eq!(dump(&sm).0, vec![(b"a".to_vec(), b"1".to_vec(), None)]);
}

#[test]
fn a_snapshot_taken_inside_an_entry_makes_its_installer_resume_that_entry() {
    let rt = rt();
    let (source_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = open(source_dir.path());
    rt.block_on(source.apply([normal(1, 10, &["INCR a"])])).unwrap();
    // The adversary: a build whose online copy lands between two commands of entry 2.
    let cut = Position { applied: Some(log_id(1, 0, 1)), partial: Some((log_id(1, 0, 2), 1)), clock_ms: 20 };
    let bytes = encoded(&cut).unwrap();
    source
        .store()
        .transaction(move |txn| {
            txn.put("a", "2")?;
            txn.put(POSITION, bytes)
        })
        .unwrap()
        .unwrap();
    let snapshot = rt.block_on(source.build_snapshot()).unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 0, 1)), "openraft sends entry 2 after it");
    let mut sm = open(dir.path());
    rt.block_on(sm.install_snapshot(&snapshot.meta, snapshot.snapshot)).unwrap();
    rt.block_on(sm.apply([normal(2, 20, &["INCR a", "INCR b"])])).unwrap();
    let expected = vec![(b"a".to_vec(), b"2".to_vec(), None), (b"b".to_vec(), b"1".to_vec(), None)];
    assert_eq!(dump(&sm).0, expected);
}

#[test]
fn compaction_keeps_a_key_the_wall_clock_calls_expired_but_the_state_machine_does_not() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    // The adversary: a replica whose wall clock (today) is far past the log's times (1970), and
    // that compacts while another replica does not. Compaction judging expiry by the wall clock
    // would drop `k`, and the next command would read differently here than there.
    rt.block_on(sm.apply([normal(1, 1_000, &["SET k v PX 1000", "SET other v"])])).unwrap();
    rt.block_on(sm.apply([normal(2, 1_100, &["SET other w"])])).unwrap();
    sm.store().compact().unwrap();
    let responses = rt.block_on(sm.apply([normal(3, 1_500, &["EXISTS k"])])).unwrap();
    assert_eq!(replies(&responses), vec![vec!["1"]]);
}
