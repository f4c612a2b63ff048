/// A small deterministic PRNG (splitmix64): good enough to pick crash states, and the same on
/// every platform for a given seed.
#[derive(Clone, Debug)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (0 if `n` is 0); the modulo bias is irrelevant here.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform enough in `0..=n`.
    pub(super) fn upto(&mut self, n: usize) -> usize {
        let pick = self.below(n as u64 + 1);
        usize::try_from(pick).expect("at most n, which is a usize")
    }

    pub(super) fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}
