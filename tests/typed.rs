//! `TypedStore`: round trips of structs, enums and strings through bincode, reopen, TTL, and
//! decode failures reported as `Error::Codec` naming the key. Each test runs on the real and on
//! the simulated file system (`both_backends!`).
#![cfg(feature = "serde")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::{Error, ManualClock, Options, TypedStore};
use serde::{Deserialize, Serialize};

mod common;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Session {
    user: String,
    scopes: Vec<String>,
    expires_at: Option<u64>,
    theme: Theme,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Theme {
    Light,
    Dark { contrast: u8 },
    Custom(String, f32),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Session(u64),
    Named(String),
}

fn session(n: u64) -> Session {
    Session {
        user: format!("user{n}"),
        scopes: vec!["read".into(), format!("team:{}", n % 3)],
        expires_at: n.is_multiple_of(2).then_some(n * 1000),
        theme: match n % 3 {
            0 => Theme::Light,
            1 => Theme::Dark { contrast: n as u8 },
            _ => Theme::Custom(format!("palette{n}"), n as f32 / 2.0),
        },
    }
}

both_backends! {
    fn structs_and_enums_round_trip_and_survive_reopen(b) {
        {
            let store: TypedStore<Key, Session> = b.typed(b.root(), Options::default()).unwrap();
            for n in 0..20 {
                store.put(&Key::Session(n), &session(n)).unwrap();
            }
            store.put(&Key::Named("admin".into()), &session(99)).unwrap();
            assert_eq!(store.get(&Key::Session(4)).unwrap(), Some(session(4)));
            assert_eq!(store.get(&Key::Named("admin".into())).unwrap(), Some(session(99)));
            assert_eq!(store.get(&Key::Session(1000)).unwrap(), None);
            store.delete(&Key::Session(0)).unwrap();
            assert!(!store.contains_key(&Key::Session(0)).unwrap());
            assert!(store.contains_key(&Key::Session(1)).unwrap());
            assert_eq!(store.len(), 20);
        }
        let store: TypedStore<Key, Session> = b.typed(b.root(), Options::default()).unwrap();
        assert_eq!(store.len(), 20);
        let all: BTreeMap<Key, Session> = store.iter().map(|item| item.unwrap()).collect();
        let mut expected: BTreeMap<Key, Session> = (1..20).map(|n| (Key::Session(n), session(n))).collect();
        expected.insert(Key::Named("admin".into()), session(99));
        assert_eq!(all, expected);
    }

    fn strings_round_trip_and_keys_are_bincode_standard(b) {
        let store: TypedStore<String, String> = b.typed(b.root(), Options::default()).unwrap();
        store.put(&"greeting".to_string(), &"héllo, wörld".to_string()).unwrap();
        store.put(&String::new(), &String::new()).unwrap(); // an empty string still encodes to one byte
        assert_eq!(store.get(&"greeting".into()).unwrap().as_deref(), Some("héllo, wörld"));
        assert_eq!(store.get(&String::new()).unwrap().as_deref(), Some(""));
        // The raw key is the bincode 2 standard encoding of the typed key.
        let raw_key = bincode::serde::encode_to_vec("greeting", bincode::config::standard()).unwrap();
        let raw = store.store().get(&raw_key).unwrap().unwrap();
        let (decoded, _): (String, usize) = bincode::serde::decode_from_slice(&raw, bincode::config::standard()).unwrap();
        assert_eq!(decoded, "héllo, wörld");
    }

    fn a_value_that_does_not_decode_is_a_codec_error_naming_the_key(b) {
        let raw = Arc::new(b.open(b.root()).unwrap());
        let typed: TypedStore<String, Session> = TypedStore::from_store(Arc::clone(&raw));
        typed.put(&"good".into(), &session(1)).unwrap();
        let bad_key = bincode::serde::encode_to_vec("bad", bincode::config::standard()).unwrap();
        // Not a Session: a string length prefix claiming far more bytes than there are.
        raw.put(&bad_key, [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'x']).unwrap();
        match typed.get(&"bad".into()) {
            Err(Error::Codec { key, reason }) => {
                assert!(key.contains("bad"), "key {key:?} should name the key");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a codec error, got {other:?}"),
        }
        // The good key still reads, and iteration reports the bad entry without stopping.
        assert_eq!(typed.get(&"good".into()).unwrap(), Some(session(1)));
        let items: Vec<_> = typed.iter().collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items.iter().filter(|i| matches!(i, Err(Error::Codec { .. }))).count(), 1);
        assert!(items.iter().any(|i| matches!(i, Ok((k, v)) if k == "good" && *v == session(1))));
    }

    fn trailing_bytes_and_undecodable_keys_are_codec_errors(b) {
        let raw = Arc::new(b.open(b.root()).unwrap());
        // A u32 written where a u8 is expected: decodes a prefix, with bytes left over.
        let as_u32: TypedStore<u8, u32> = TypedStore::from_store(Arc::clone(&raw));
        as_u32.put(&1, &70_000).unwrap();
        let as_u8: TypedStore<u8, u8> = TypedStore::from_store(Arc::clone(&raw));
        assert!(matches!(as_u8.get(&1), Err(Error::Codec { .. })));
        // A raw key that is not a u8 at all: iteration yields a codec error for it.
        raw.put(b"\xff\xff\xff", b"").unwrap();
        let errors: Vec<_> = as_u8.iter().filter_map(|i| i.err()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| matches!(e, Error::Codec { key, .. } if key == "\\xff\\xff\\xff")), "{errors:?}");
    }

    fn typed_ttl_expires_with_the_store_clock(b) {
        let clock = Arc::new(ManualClock::new(5_000_000));
        let options = Options { clock: clock.clone(), ..Options::default() };
        let store: TypedStore<u32, String> = b.typed(b.root(), options).unwrap();
        store.put_with_ttl(&1, &"short".into(), Duration::from_secs(10)).unwrap();
        store.put(&2, &"forever".into()).unwrap();
        assert_eq!(store.len(), 2);
        clock.advance_ms(10_000);
        assert_eq!(store.get(&1).unwrap(), None);
        assert!(!store.contains_key(&1).unwrap());
        assert_eq!(store.len(), 1);
        let items: Vec<(u32, String)> = store.iter().map(Result::unwrap).collect();
        assert_eq!(items, vec![(2, "forever".to_string())]);
    }
}
