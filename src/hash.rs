//! The key hash: SipHash-1-3 with a per-store random key.
//!
//! The index needs a hash that an attacker cannot aim at one stripe or bucket (HashDoS), so it is
//! keyed with 128 random bits. Hint files store each key's hash so that open need not rehash every
//! key; for that the hash must be stable across runs and toolchains, which `std`'s `RandomState`
//! does not promise. So the algorithm is written here (SipHash, Aumasson and Bernstein, with one
//! compression and three finalization rounds, as `std` uses), and its key lives in the manifest.

use std::hash::{BuildHasher, RandomState};

/// A keyed SipHash-1-3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl KeyHasher {
    pub(crate) fn new(key: [u8; 16]) -> KeyHasher {
        let (k0, k1) = key.split_at(8);
        KeyHasher {
            k0: u64::from_le_bytes(k0.try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(k1.try_into().expect("8 bytes")),
        }
    }

    /// A fresh random key, from the operating system's randomness (via `RandomState`'s seed).
    pub(crate) fn random_key() -> [u8; 16] {
        let a = RandomState::new().hash_one(0x5eed_u64);
        let b = RandomState::new().hash_one(std::time::SystemTime::now());
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
        key
    }

    /// SipHash-1-3 of `bytes`.
    pub(crate) fn hash(&self, bytes: &[u8]) -> u64 {
        siphash::<1, 3>(self.k0, self.k1, bytes)
    }
}

struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline(always)]
    fn absorb<const C: usize>(&mut self, m: u64) {
        self.v3 ^= m;
        for _ in 0..C {
            self.round();
        }
        self.v0 ^= m;
    }
}

/// SipHash-C-D of `bytes` under the key `(k0, k1)`.
fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut s = State {
        v0: k0 ^ 0x736f_6d65_7073_6575,
        v1: k1 ^ 0x646f_7261_6e64_6f6d,
        v2: k0 ^ 0x6c79_6765_6e65_7261,
        v3: k1 ^ 0x7465_6462_7974_6573,
    };
    let mut words = bytes.chunks_exact(8);
    for word in words.by_ref() {
        s.absorb::<C>(u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = bytes.len() as u8;
    s.absorb::<C>(u64::from_le_bytes(last));
    s.v2 ^= 0xff;
    for _ in 0..D {
        s.round();
    }
    s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    /// The reference vectors of the SipHash paper use SipHash-2-4 with the key 00..0f over the
    /// messages 00, 00 01, ...; `std`'s (deprecated) `SipHasher` is that function.
    #[test]
    #[allow(deprecated, reason = "std's SipHasher is the reference SipHash-2-4 to compare against")]
    fn the_rounds_match_reference_siphash_2_4() {
        let key: Vec<u8> = (0..16).collect();
        let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
        let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
        assert_eq!(siphash::<2, 4>(k0, k1, &[]), 0x726f_db47_dd0e_0e31, "the paper's first vector");
        for len in 0..64 {
            let msg: Vec<u8> = (0..len as u8).collect();
            let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
            reference.write(&msg);
            assert_eq!(siphash::<2, 4>(k0, k1, &msg), reference.finish(), "length {len}");
        }
    }

    #[test]
    fn keys_round_trip_and_change_the_hash() {
        let key = KeyHasher::random_key();
        let a = KeyHasher::new(key);
        assert_eq!(KeyHasher::new(key).hash(b"x"), a.hash(b"x"), "the same key gives the same hash");
        let b = KeyHasher::new(KeyHasher::random_key());
        assert_ne!(a, b, "two random keys differ");
        assert_ne!(a.hash(b"same input"), b.hash(b"same input"));
    }
}
