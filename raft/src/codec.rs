//! The one encoding used for everything this crate stores or sends: bincode 2 over serde.

use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value`; the crate's types always encode (no maps with non-string keys are refused).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, config())
}

/// Decodes a whole value from `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config()).map(|(value, _)| value)
}

/// Serde for a list of byte strings as byte strings: serde's own `Vec<u8>` is a sequence of
/// numbers, which bincode writes one element at a time (measured: the largest user of CPU in a
/// replicated write after the kernel); as bytes it is a length and one copy.
pub(crate) mod byte_strings {
    use serde::de::{SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    struct Bytes<'a>(&'a [u8]);

    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    struct Owned(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Owned, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Owned;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Owned, E> {
                    Ok(Owned(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Owned, E> {
                    Ok(Owned(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Owned, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = seq.next_element()? {
                        out.push(b);
                    }
                    Ok(Owned(out))
                }
            }
            deserializer.deserialize_byte_buf(V)
        }
    }

    /// One byte string (for `#[serde(with = "byte_strings::one")]`).
    pub(crate) mod one {
        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(bytes)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
            let owned: super::Owned = serde::Deserialize::deserialize(deserializer)?;
            Ok(owned.0)
        }
    }

    pub(crate) fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for item in list {
            seq.serialize_element(&Bytes(item))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let owned: Vec<Owned> = serde::Deserialize::deserialize(deserializer)?;
        Ok(owned.into_iter().map(|o| o.0).collect())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn byte_strings_round_trip_and_are_compact() {
            let request = crate::Request { now_ms: 7, commands: vec![vec![1, 2, 255], Vec::new(), vec![0; 300]] };
            let bytes = crate::codec::encode(&request).unwrap();
            assert!(bytes.len() < 320, "{} bytes: a length and the bytes per command", bytes.len());
            assert_eq!(crate::codec::decode::<crate::Request>(&bytes).unwrap(), request);
        }
    }
}
