//! The `ferrocask` binary end to end: exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

fn ferrocask(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocask")).arg("--dir").arg(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn put_get_delete_keys_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    assert!(ferrocask(&dir, &["put", "user:1", "ada"]).status.success());
    assert!(ferrocask(&dir, &["put", "user:2", "bob"]).status.success());
    assert!(ferrocask(&dir, &["--hex", "put", "00ff", "0102"]).status.success());
    assert_eq!(stdout(&ferrocask(&dir, &["get", "user:1"])), "ada\n");
    assert_eq!(stdout(&ferrocask(&dir, &["--hex", "get", "00ff"])), "0102\n");
    assert_eq!(stdout(&ferrocask(&dir, &["keys", "--prefix", "user:"])), "user:1\nuser:2\n");
    assert!(ferrocask(&dir, &["delete", "user:1"]).status.success());
    let missing = ferrocask(&dir, &["get", "user:1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
    let json = stdout(&ferrocask(&dir, &["stats", "--json"]));
    assert!(json.starts_with("{\"live_keys\":2,"), "{json}");
    // One active segment: 3 puts and a tombstone, 2 of them live (the tombstone and the deleted
    // put are dead).
    assert!(
        json.contains("\"segment_details\":[{\"id\":1,\"kind\":\"active\",")
            && json.contains("\"live_records\":2,\"dead_records\":2,\"tombstones\":1}]"),
        "{json}"
    );
    let text = stdout(&ferrocask(&dir, &["stats"]));
    assert!(text.lines().any(|l| l.starts_with("0000000000000001 active")), "{text}");
    let dump = stdout(&ferrocask(&dir, &["dump"]));
    assert_eq!(dump.lines().count(), 1 + 4, "{dump}");
    assert!(dump.contains("\tdelete\tuser:1\t0\t0"), "{dump}");
    assert!(ferrocask(&dir, &["verify"]).status.success());
}

#[test]
fn verify_exits_1_on_a_flipped_byte_and_names_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(ferrocask(dir, &["put", "k", "some value"]).status.success());
    // A later frame (of a later sync group), so damage in the first is in acknowledged data.
    assert!(ferrocask(dir, &["put", "k2", "v2"]).status.success());
    let seg = dir.join(format!("{:016x}.seg", 1));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40 + 24 + 16 + 3] ^= 1; // inside the first record (16-byte header), in the first frame (offset 40)
    std::fs::write(&seg, &bytes).unwrap();
    let out = ferrocask(dir, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("DAMAGE") && text.contains("at offset 40"), "{text}");
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ferrocask(&tmp.path().join("nothing"), &["get", "k"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no store"), "{err}");
    let out = ferrocask(tmp.path(), &["verify"]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn backup_makes_a_store_that_opens_to_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let copy = tmp.path().join("copy");
    assert!(ferrocask(&dir, &["put", "a", "1"]).status.success());
    assert!(ferrocask(&dir, &["put", "b", "2"]).status.success());
    let out = ferrocask(&dir, &["backup", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(ferrocask(&dir, &["put", "c", "3"]).status.success());
    assert_eq!(stdout(&ferrocask(&copy, &["keys"])), "a\nb\n");
    assert_eq!(stdout(&ferrocask(&copy, &["get", "b"])), "2\n");
    // A second backup into the now non-empty directory is refused with one line.
    let again = ferrocask(&dir, &["backup", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&again.stderr).lines().count(), 1);
}

/// `bench --json` reports the read-modify-write and async sections with their records per
/// sync (a short run: what is checked is the report, not the speed).
#[test]
fn bench_json_reports_increments_and_async_writers_with_records_per_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp_arg = tmp.path().to_str().unwrap();
    let out = ferrocask(
        &tmp.path().join("unused"),
        &["bench", "--only", "rmw", "--keys", "100", "--secs", "0.05", "--json", "--in", tmp_arg],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout(&out);
    for section in [
        "\"increments\":{\"1\":{",
        "\"increment_puts\":{\"1\":{",
        "\"async_puts\":{\"1000\":{",
        "\"async_thread_puts\":{\"32\":{",
    ] {
        assert!(json.contains(section), "{section} missing from {json}");
    }
    assert!(json.matches("\"records_per_sync\":").count() >= 6, "{json}");
}

/// The number after `"field":` in the JSON object reached through the keys of `path`, each
/// searched after the one before (enough for the bench report, whose keys are known).
fn json_number(json: &str, path: &[&str], field: &str) -> f64 {
    let mut rest = json;
    for key in path {
        rest = rest.split_once(&format!("\"{key}\":{{")).unwrap_or_else(|| panic!("{path:?} in {json}")).1;
    }
    let value = rest.split_once(&format!("\"{field}\":")).unwrap_or_else(|| panic!("{path:?}.{field} in {json}")).1;
    value.split([',', '}']).next().unwrap().parse().unwrap()
}

/// `bench` measures the raw fdatasync baselines and the durable puts interleaved, in the same
/// number of slices (it measured the baselines once, at the start, before), and reports each
/// throughput as the median slice with its spread (a short run: what is checked is the report).
#[test]
fn bench_json_reports_puts_and_raw_baselines_as_medians_of_the_same_slices() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp_arg = tmp.path().to_str().unwrap();
    // 0.5 s in slices of 0.25 s: two rounds.
    let out = ferrocask(
        &tmp.path().join("unused"),
        &["bench", "--only", "puts", "--keys", "100", "--secs", "0.5", "--json", "--in", tmp_arg],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout(&out);
    assert!(json.contains("\"slice_secs\":0.25,"), "{json}");
    for path in [&["raw_append"][..], &["raw_prealloc"], &["puts", "1"], &["puts", "32"]] {
        assert_eq!(json_number(&json, path, "slices"), 2.0, "{path:?}: {json}");
        let (p25, median, p75) = (
            json_number(&json, path, "ops_per_sec_p25"),
            json_number(&json, path, "ops_per_sec"),
            json_number(&json, path, "ops_per_sec_p75"),
        );
        assert!(0.0 < p25 && p25 <= median && median <= p75, "{path:?}: {p25} {median} {p75} in {json}");
    }
}
