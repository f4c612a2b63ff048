//! The project's one pseudo-random generator, for everything that must replay from a seed: the
//! simulator's crash states and short writes, the tests' workloads and scripts, the server's
//! differential tests and the CLI benchmark's key choices. Re-exported as
//! `ferrocask::testing::Rng`; the store itself never uses randomness from it.

/// A small deterministic PRNG (splitmix64): good enough to pick crash states, workloads and keys,
/// and the same on every platform for a given seed. Not for anything an adversary may predict.
///
/// The simulator's crash states depend on this exact sequence (a crash with a given seed keeps
/// the same bytes in every build), so do not change the algorithm without reason.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[expect(clippy::should_implement_trait, reason = "an endless generator of u64, not an Iterator of Options")]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (0 if `n` is 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform enough in `0..=n`.
    pub fn upto(&mut self, n: usize) -> usize {
        let pick = self.below(n as u64 + 1);
        usize::try_from(pick).expect("at most n, which is a usize")
    }

    /// Heads or tails.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// `true` with a chance of `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "pick from an empty slice");
        let i = usize::try_from(self.below(items.len() as u64)).expect("below items.len()");
        &items[i]
    }
}
