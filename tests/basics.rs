//! Reopen preserves puts, overwrites, deletes and batches; limits; locking. Each test runs on the
//! real and on the simulated file system (`both_backends!`).

use ferrocask::{Batch, Error};

mod common;

use common::small_segments;

both_backends! {
    fn reopen_preserves_puts_overwrites_deletes_and_batches(b) {
        {
            let store = b.open(b.root()).unwrap();
            store.put(b"a", b"1").unwrap();
            store.put(b"b", b"2").unwrap();
            store.put(b"a", b"3").unwrap();
            store.delete(b"b").unwrap();
            let mut batch = Batch::new();
            batch.put(b"c", b"4").put(b"d", b"5").delete(b"c");
            store.write(batch).unwrap();
            assert_eq!(store.len(), 2);
        }
        let store = b.open(b.root()).unwrap();
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(store.get(b"b").unwrap(), None);
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(store.get(b"d").unwrap().as_deref(), Some(&b"5"[..]));
        assert_eq!(store.len(), 2);
    }

    fn many_segments_survive_reopen(b) {
        {
            let store = b.open_with(b.root(), small_segments()).unwrap();
            for i in 0..3000u32 {
                store.put(format!("key{}", i % 1000), i.to_le_bytes()).unwrap();
            }
            assert!(store.stats().segments >= 3, "{:?}", store.stats());
        }
        let store = b.open_with(b.root(), small_segments()).unwrap();
        assert_eq!(store.len(), 1000);
        for i in 2000..3000u32 {
            assert_eq!(store.get(format!("key{}", i % 1000)).unwrap().as_deref(), Some(&i.to_le_bytes()[..]));
        }
    }

    fn a_second_open_is_locked(b) {
        let _store = b.open(b.root()).unwrap();
        assert!(matches!(b.open(b.root()), Err(Error::Locked { .. })));
    }

    fn dropping_the_store_releases_the_directory(b) {
        drop(b.open(b.root()).unwrap());
        b.open(b.root()).unwrap();
    }

    fn oversized_keys_and_values_are_rejected_and_change_nothing(b) {
        let store = b.open_with(b.root(), small_segments()).unwrap();
        store.put(b"k", b"v").unwrap();
        let big_key = vec![b'x'; ferrocask::Options::default().key_bytes_max + 1];
        assert!(matches!(store.put(&big_key, b"v"), Err(Error::KeyTooLarge { .. })));
        assert!(matches!(store.put(b"k", vec![0u8; (8 << 10) + 1]), Err(Error::ValueTooLarge { .. })));
        assert!(matches!(store.put(b"", b"v"), Err(Error::EmptyKey)));
        let mut batch = Batch::new();
        batch.put(b"k", b"changed").put(&big_key, b"v");
        assert!(matches!(store.write(batch), Err(Error::KeyTooLarge { .. })));
        let mut batch = Batch::new();
        for i in 0..20 {
            batch.put(format!("big{i}"), vec![1u8; 8 << 10]);
        }
        assert!(matches!(store.write(batch), Err(Error::BatchTooLarge { .. })));
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.len(), 1);
        drop(store);
        let store = b.open_with(b.root(), small_segments()).unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.len(), 1);
    }

    fn delete_of_a_missing_key_is_ok(b) {
        let store = b.open(b.root()).unwrap();
        store.delete(b"nothing").unwrap();
        assert!(store.is_empty());
    }

    fn compaction_reclaims_space_and_keeps_data(b) {
        let options = small_segments();
        {
            let store = b.open_with(b.root(), options.clone()).unwrap();
            for round in 0..4u32 {
                for i in 0..500u32 {
                    store.put(format!("key{i}"), [round as u8; 100]).unwrap();
                }
            }
            for i in 0..50u32 {
                store.delete(format!("key{i}")).unwrap();
            }
            let before = store.stats().disk_bytes;
            let report = store.compact().unwrap();
            let after = store.stats();
            assert!(report.bytes_reclaimed > 0, "{report:?}");
            assert!(after.disk_bytes < before / 2, "{before} -> {after:?}");
            assert_eq!(store.len(), 450);
            assert_eq!(store.get(b"key0").unwrap(), None);
            assert_eq!(store.get(b"key99").unwrap().as_deref(), Some(&[3u8; 100][..]));
        }
        let store = b.open_with(b.root(), options).unwrap();
        assert_eq!(store.len(), 450);
        assert_eq!(store.get(b"key0").unwrap(), None);
        assert_eq!(store.get(b"key99").unwrap().as_deref(), Some(&[3u8; 100][..]));
        assert!(store.recovery_report().segments_from_hints > 0, "{:?}", store.recovery_report());
    }

    /// A batch far over the size limit is refused before it is encoded; the length it reports is
    /// still the batch's encoded length (a 16-byte record header per operation, then key and value).
    fn a_far_oversized_batch_is_refused_with_its_encoded_length(b) {
        let store = b.open_with(b.root(), small_segments()).unwrap();
        let mut batch = Batch::new();
        let mut encoded_len = 0;
        for i in 0..2000 {
            let key = format!("key{i}");
            if i % 10 == 0 {
                encoded_len += 16 + key.len();
                batch.delete(&key);
            } else {
                encoded_len += 16 + key.len() + 4000;
                batch.put(&key, vec![7u8; 4000]);
            }
        }
        match store.write(batch) {
            Err(Error::BatchTooLarge { len, max }) => {
                assert_eq!(len, encoded_len);
                assert!(len > 100 * max, "the batch is far over the limit: {len} vs {max}");
            }
            other => panic!("expected BatchTooLarge, got {other:?}"),
        }
        assert!(store.is_empty());
    }
}
