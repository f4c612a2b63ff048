//! The set of operations linearized so far: one bit per operation of a partition, the first half
//! of the search cache's key.

/// A fixed-size set of small integers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64)] }
    }

    /// Adds `bit`.
    pub(crate) fn insert(&mut self, bit: usize) {
        self.words[bit / 64] |= 1 << (bit % 64);
    }

    /// Removes `bit`.
    pub(crate) fn remove(&mut self, bit: usize) {
        self.words[bit / 64] &= !(1 << (bit % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_remove_touch_only_their_bit_across_words() {
        let mut set = Bitset::new(130);
        set.insert(0);
        set.insert(64);
        set.insert(129);
        let mut expected = Bitset::new(130);
        expected.words = vec![1, 1, 2];
        assert_eq!(set, expected);
        set.remove(64);
        expected.words = vec![1, 0, 2];
        assert_eq!(set, expected);
    }
}
