//! The seedable generator shared by the simulator and the routers: `rand_xoshiro`'s
//! Xoshiro256++ seeded through SplitMix64 (its `seed_from_u64`), behind the `rand_core` traits
//! so that `rand_distr` samples from it. The crate versions are pinned (`=`) in the workspace:
//! the same seed must give the same stream on every platform and every release.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Xoshiro256++. `Clone` copies the stream position (used for checkpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng(Xoshiro256PlusPlus);

/// One SplitMix64 step: used to expand seeds and to derive independent per-env seeds.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the seed of sub-stream `index` from `base`: distinct indices give unrelated seeds.
pub fn derive_seed(base: u64, index: u64) -> u64 {
    let mut s = base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut s);
    splitmix64(&mut s)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// The raw state (four words, as the reference implementation holds them), for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        // rand_xoshiro keeps its state private; its serde form is the one public view of it.
        let value = serde_json::to_value(&self.0).expect("a generator state serializes");
        serde_json::from_value::<State>(value)
            .expect("rand_xoshiro's serde form is { s: [u64; 4] }")
            .s
    }

    /// Restores a state saved with [`Rng::state`]. An all-zero state is invalid for xoshiro and
    /// is replaced by the state of seed 0.
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            return Rng::new(0);
        }
        let mut seed = [0u8; 32];
        for (chunk, word) in seed.chunks_exact_mut(8).zip(s) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Rng(Xoshiro256PlusPlus::from_seed(seed))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n). `n` must be positive. Lemire's multiply-shift with rejection,
    /// so there is no modulo bias.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }
}

#[derive(serde::Deserialize)]
struct State {
    s: [u64; 4],
}

impl RngCore for Rng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference_vector() {
        // Reference: xoshiro256plusplus.c with state {1, 2, 3, 4}.
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let expected = [41943041u64, 58720359, 3588806011781223, 3591011842654386];
        for e in expected {
            assert_eq!(r.next_u64(), e);
        }
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        // Reference: splitmix64.c seeded with 1234567.
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        assert_eq!(splitmix64(&mut s), 3203168211198807973);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(7);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[r.below(5) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn seeding_is_splitmix64_expansion_and_state_round_trips() {
        // The stream of seed `s` starts from four SplitMix64 outputs, as before the move to
        // rand_xoshiro (the reference procedure of the xoshiro authors).
        for seed in [0u64, 1, 42, u64::MAX] {
            let mut sm = seed;
            let want = [0; 4].map(|_| splitmix64(&mut sm));
            let mut r = Rng::new(seed);
            assert_eq!(r.state(), want);
            r.next_u64();
            let copy = Rng::from_state(r.state());
            assert_eq!(copy, r);
        }
    }

    #[test]
    fn derived_seeds_differ() {
        let a: Vec<u64> = (0..100).map(|i| derive_seed(42, i)).collect();
        let mut b = a.clone();
        b.sort();
        b.dedup();
        assert_eq!(a.len(), b.len());
    }
}
