use std::collections::HashSet;

use super::*;

const DIR: &str = "/db";

fn setup() -> Arc<SimFs> {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new(DIR));
    fs
}

fn p(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// Creates `name` with `bytes`, entry durable and content synced.
fn durable_file(fs: &SimFs, name: &str, bytes: &[u8]) -> Box<dyn VfsFile> {
    let f = fs.open(&p(name), OpenMode::CreateNew).unwrap();
    f.write_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    f
}

#[test]
fn nothing_loses_unsynced_writes_everything_keeps_them() {
    for mode in [CrashMode::Nothing, CrashMode::Everything] {
        let fs = setup();
        let f = durable_file(&fs, "a", b"hello");
        f.write_at(b" world", 5).unwrap();
        fs.crash(mode, 1);
        let want: &[u8] = if mode == CrashMode::Nothing { b"hello" } else { b"hello world" };
        assert_eq!(fs.read_file(&p("a")).unwrap(), want, "{mode:?}");
    }
}

#[test]
fn synced_write_survives_every_mode_and_seed() {
    for mode in CrashMode::ALL {
        for seed in 0..50 {
            let fs = setup();
            let f = durable_file(&fs, "a", &[7; 3000]);
            f.write_at(&[9; 5000], 1000).unwrap();
            f.set_len(100).unwrap();
            fs.crash(mode, seed);
            let got = fs.read_file(&p("a")).unwrap();
            assert!(got.len() >= 100, "{mode:?} {seed}");
            assert!(got[..100].iter().all(|&b| b == 7), "{mode:?} {seed}");
        }
    }
}

#[test]
fn prefix_mode_keeps_an_ordered_prefix() {
    let mut seen = HashSet::new();
    for seed in 0..200 {
        let fs = setup();
        let f = durable_file(&fs, "a", b"");
        for i in 0..4u8 {
            f.write_at(&[i + 1; 10], u64::from(i) * 10).unwrap();
        }
        fs.crash(CrashMode::Prefix, seed);
        let got = fs.read_file(&p("a")).unwrap();
        // Bytes are written in order, so what survived is a prefix of the full content.
        let full: Vec<u8> = (0..4u8).flat_map(|i| [i + 1; 10]).collect();
        assert_eq!(got[..], full[..got.len()], "seed {seed}");
        seen.insert(got.len());
    }
    assert!(seen.len() > 10, "prefix lengths should vary: {seen:?}");
}

#[test]
fn sector_mode_tears_at_sector_boundaries() {
    let mut mixed = false;
    for seed in 0..50 {
        let fs = setup();
        let f = durable_file(&fs, "a", &[1; 2048]);
        f.write_at(&[2; 2048], 0).unwrap();
        fs.crash(CrashMode::Sectors512, seed);
        let got = fs.read_file(&p("a")).unwrap();
        assert_eq!(got.len(), 2048);
        for sector in got.chunks(512) {
            assert!(sector.iter().all(|&b| b == sector[0]), "torn inside a sector");
        }
        mixed |= got.chunks(512).any(|s| s[0] == 1) && got.chunks(512).any(|s| s[0] == 2);
    }
    assert!(mixed);
}

#[test]
fn sector_mode_extends_with_zero_fill() {
    for seed in 0..20 {
        let fs = setup();
        let f = durable_file(&fs, "a", b"");
        f.write_at(&[5; 100], 5000).unwrap();
        fs.crash(CrashMode::Sectors4096, seed);
        let got = fs.read_file(&p("a")).unwrap();
        assert!(got.is_empty() || (got.len() == 5100 && got[..4096].iter().all(|&b| b == 0)), "{seed}");
    }
}

#[test]
fn unsynced_create_is_lost_unless_dir_synced() {
    let fs = setup();
    let f = fs.open(&p("new"), OpenMode::CreateNew).unwrap();
    f.write_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("new")), None);

    let f = fs.open(&p("new"), OpenMode::CreateNew).unwrap();
    f.write_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("new")).unwrap(), b"x");
}

#[test]
fn unsynced_directory_is_lost_with_its_files() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/a/b")).unwrap();
    let f = fs.open(Path::new("/a/b/f"), OpenMode::CreateNew).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/a/b")).unwrap();
    fs.crash(CrashMode::Nothing, 0);
    assert!(fs.list_all().is_empty());
    assert_eq!(fs.list(Path::new("/a")).unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn rename_is_atomic_and_durable_only_after_sync_dir() {
    let fs = setup();
    durable_file(&fs, "old", b"1");
    let tmp = durable_file(&fs, "tmp", b"2");
    drop(tmp);
    fs.rename(&p("tmp"), &p("old")).unwrap();
    assert_eq!(fs.read_file(&p("old")).unwrap(), b"2");
    assert_eq!(fs.read_file(&p("tmp")), None);
    let mut outcomes = HashSet::new();
    for seed in 0..20 {
        let fs2 = setup();
        durable_file(&fs2, "old", b"1");
        durable_file(&fs2, "tmp", b"2");
        fs2.rename(&p("tmp"), &p("old")).unwrap();
        fs2.crash(CrashMode::Prefix, seed);
        // Either the rename happened entirely or not at all.
        let state = (fs2.read_file(&p("old")), fs2.read_file(&p("tmp")));
        assert!(
            state == (Some(b"1".to_vec()), Some(b"2".to_vec())) || state == (Some(b"2".to_vec()), None),
            "{state:?}"
        );
        outcomes.insert(state);
    }
    assert_eq!(outcomes.len(), 2);
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("old")).unwrap(), b"1");

    fs.rename(&p("tmp"), &p("old")).unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("old")).unwrap(), b"2");
    assert_eq!(fs.list(Path::new(DIR)).unwrap(), vec!["old".to_string()]);
}

#[test]
fn removed_file_handle_and_mapping_still_work() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    let map = f.map(10).unwrap();
    fs.remove_file(&p("a")).unwrap();
    assert_eq!(fs.read_file(&p("a")), None);
    let mut buf = [0; 3];
    f.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"abc");
    f.write_at(b"def", 3).unwrap();
    assert_eq!(map.read(0, 6).unwrap().as_ref(), b"abcdef");
    assert!(map.read(8, 3).is_none(), "past the end of the mapping");
    // The removal is not durable yet.
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
}

#[test]
fn read_past_end_is_unexpected_eof() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    let mut buf = [0; 4];
    assert_eq!(f.read_at(&mut buf, 0).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(fs.open(&p("a"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs.open(&p("zz"), OpenMode::ReadOnly).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(fs.open(Path::new("/nope/a"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::NotFound);
    let ro = fs.open(&p("a"), OpenMode::ReadOnly).unwrap();
    assert!(ro.write_at(b"x", 0).is_err());
}

#[test]
fn lock_is_exclusive_and_released_on_drop_and_crash() {
    let fs = setup();
    let guard = fs.lock(&p("LOCK")).unwrap();
    assert_eq!(fs.lock(&p("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    drop(guard);
    let guard = fs.lock(&p("LOCK")).unwrap();
    fs.crash(CrashMode::Everything, 0);
    let again = fs.lock(&p("LOCK")).unwrap();
    // The stale guard must not release the new holder's lock.
    drop(guard);
    assert_eq!(fs.lock(&p("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    drop(again);
    fs.lock(&p("LOCK")).unwrap();
}

#[test]
fn nth_fault_fires_exactly_once_on_the_right_op() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    let start = fs.op_count();
    fs.inject(Fault::nth(2, FaultKind::Eio));
    let mut buf = [0; 1];
    f.read_at(&mut buf, 0).unwrap();
    f.len().unwrap();
    assert!(f.read_at(&mut buf, 0).is_err(), "op 2 fails");
    for _ in 0..10 {
        f.read_at(&mut buf, 0).unwrap();
    }
    assert_eq!(fs.op_count(), start + 13);
    // Mapping reads are not counted.
    let map = f.map(3).unwrap();
    map.read(0, 3).unwrap();
    assert_eq!(fs.op_count(), start + 14);
}

#[test]
fn matching_fault_respects_times_and_path() {
    let fs = setup();
    fs.inject(Fault::matching(OpKind::Create, "seg", FaultKind::NoSpace).times(2));
    assert!(fs.open(&p("other"), OpenMode::CreateNew).is_ok());
    for _ in 0..2 {
        assert_eq!(fs.open(&p("seg1"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::StorageFull);
    }
    assert!(fs.open(&p("seg1"), OpenMode::CreateNew).is_ok());
}

#[test]
fn halt_makes_later_ops_fail_until_crash() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    fs.inject(Fault::matching(OpKind::Write, "a", FaultKind::Eio).halt());
    assert!(f.write_at(b"x", 0).is_err());
    assert!(fs.is_halted());
    assert!(f.sync_data().is_err());
    assert!(fs.list(Path::new(DIR)).is_err());
    fs.clear_faults();
    fs.crash(CrashMode::Everything, 0);
    assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc", "the failed write had no effect");
    let f = fs.open(&p("a"), OpenMode::ReadWrite).unwrap();
    f.write_at(b"x", 0).unwrap();

    fs.halt();
    assert!(f.len().is_err());
}

#[test]
fn sync_fails_keeps_data_non_durable() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    f.write_at(b"def", 3).unwrap();
    fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
    assert!(f.sync_data().is_err());
    fs.inject(Fault::matching(OpKind::SyncDir, "", FaultKind::SyncFails).times(1));
    let g = fs.open(&p("b"), OpenMode::CreateNew).unwrap();
    g.sync_data().unwrap();
    assert!(fs.sync_dir(Path::new(DIR)).is_err());
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
    assert_eq!(fs.read_file(&p("b")), None);
}

/// Linux may drop the dirty pages of a failed fsync: a retried sync that succeeds must not
/// make the lost bytes durable (it does persist the file's current length: the lost bytes
/// read as zeros).
#[test]
fn a_failed_sync_loses_the_unsynced_writes_even_after_a_later_successful_sync() {
    for mode in CrashMode::ALL {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        f.write_at(b"def", 3).unwrap();
        f.set_len(10).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        let mut buf = [0; 6];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abcdef", "{mode:?}: the page cache still shows the lost bytes");
        fs.crash(mode, 3);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc\0\0\0\0\0\0\0", "{mode:?}");
    }
}

#[test]
fn an_eio_fault_on_a_sync_loses_the_unsynced_writes_too() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    f.write_at(b"def", 3).unwrap();
    fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::Eio).times(1));
    assert!(f.sync_data().is_err());
    fs.crash(CrashMode::Everything, 0);
    assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
}

#[test]
fn writes_after_a_failed_sync_become_durable_around_the_lost_ones() {
    for mode in [CrashMode::Nothing, CrashMode::Everything] {
        let fs = setup();
        let f = durable_file(&fs, "a", b"0123456789");
        f.write_at(b"xx", 2).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
        assert!(f.sync_data().is_err());
        f.write_at(b"yy", 6).unwrap();
        f.write_at(b"zz", 12).unwrap();
        f.sync_data().unwrap();
        fs.crash(mode, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"012345yy89\0\0zz", "{mode:?}");
    }
}

/// Fuzz finding `ops_model/truncation-lost-by-a-failed-sync`: a truncation whose sync failed
/// stayed undone for ever in the simulation, although a later successful sync persists the
/// file's current length (as fdatasync does): bytes past a sealed segment's last frame then
/// came back at a crash and made the store unopenable.
#[test]
fn regression_a_sync_after_a_failed_one_persists_the_current_length() {
    for mode in [CrashMode::Nothing, CrashMode::Everything] {
        let fs = setup();
        let f = durable_file(&fs, "a", b"0123456789");
        f.set_len(4).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
        assert!(f.sync_data().is_err());
        f.write_at(b"ab", 4).unwrap();
        f.sync_data().unwrap();
        fs.crash(mode, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"0123ab", "{mode:?}");
    }
}

#[test]
fn the_lost_writes_of_a_failed_sync_never_survive_a_sector_or_prefix_crash() {
    for mode in [CrashMode::Prefix, CrashMode::Sectors512, CrashMode::Sectors4096] {
        for seed in 0..20 {
            let fs = setup();
            let f = durable_file(&fs, "a", &[1; 1024]);
            f.write_at(&[2; 512], 0).unwrap();
            fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
            assert!(f.sync_data().is_err());
            f.write_at(&[3; 512], 512).unwrap();
            fs.crash(mode, seed);
            let got = fs.read_file(&p("a")).unwrap();
            assert!(got[..512].iter().all(|&b| b == 1), "{mode:?} {seed}: a lost write survived");
        }
    }
}

#[test]
fn a_sync_refused_by_a_halt_drops_nothing() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    f.write_at(b"def", 3).unwrap();
    fs.halt();
    assert!(f.sync_data().is_err());
    fs.crash(CrashMode::Everything, 0);
    assert_eq!(fs.read_file(&p("a")).unwrap(), b"abcdef");
}

#[test]
#[should_panic(expected = "past the end of the file")]
fn a_mapping_read_past_the_end_of_the_file_panics_like_sigbus() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    let map = f.map(10).unwrap();
    let _ = map.read(2, 2);
}

#[test]
fn short_write_writes_a_strict_prefix() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"");
    for seed in 0..20 {
        fs.reseed_faults(seed);
        f.set_len(0).unwrap();
        fs.inject(Fault::nth(0, FaultKind::ShortWrite));
        let err = f.write_at(&[1; 100], 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        let len = fs.file_len(&p("a")).unwrap();
        assert!(len < 100);
        assert!(fs.read_file(&p("a")).unwrap().iter().all(|&b| b == 1));
    }
}

#[test]
fn old_handles_are_dead_after_crash() {
    let fs = setup();
    let f = durable_file(&fs, "a", b"abc");
    let map = f.map(3).unwrap();
    fs.crash(CrashMode::Everything, 0);
    let mut buf = [0; 3];
    assert!(f.read_at(&mut buf, 0).is_err());
    assert!(f.write_at(b"x", 0).is_err());
    assert!(f.sync_data().is_err());
    assert!(f.len().is_err());
    assert!(map.read(0, 3).is_none());
    let g = fs.open(&p("a"), OpenMode::ReadOnly).unwrap();
    g.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"abc");
}

#[test]
fn crash_is_deterministic_per_seed() {
    let run = |seed| {
        let fs = setup();
        for name in ["a", "b", "c"] {
            let f = fs.open(&p(name), OpenMode::CreateNew).unwrap();
            for i in 0..20u8 {
                f.write_at(&[i; 700], u64::from(i) * 300).unwrap();
            }
        }
        fs.crash(CrashMode::Prefix, seed);
        fs.list_all().into_iter().map(|path| (fs.read_file(&path).unwrap(), path)).collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
}

fn assert_send_sync_debug<T: Send + Sync + fmt::Debug>() {}

#[test]
fn helpers_and_debug() {
    let fs = SimFs::new();
    fs.write_file_durable(Path::new("rel/x"), b"12");
    fs.write_file_durable(Path::new("./rel/x"), b"345");
    fs.crash(CrashMode::Nothing, 0);
    assert_eq!(fs.list_all(), vec![PathBuf::from("rel/x")]);
    assert_eq!(fs.file_len(Path::new("rel/x")), Some(3));
    assert!(format!("{fs:?}").contains("SimFs"));
    assert_send_sync_debug::<SimFs>();
}
