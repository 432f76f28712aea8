//! The one random number generator of the engine: seeded, serialisable (checkpoints store its state) and the same
//! on every platform.

use rand::SeedableRng;

pub type Rng = rand_pcg::Pcg64;

pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Derives an independent stream for a named part, so that adding a part never shifts another part's numbers.
pub fn derived(seed: u64, purpose: &str) -> Rng {
    // FNV-1a over the purpose keeps this stable across Rust versions (std's hasher is not guaranteed to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seeded(seed ^ h.rotate_left(17))
}
