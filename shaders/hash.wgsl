// Counter-based hashing for the kernels that draw random numbers (rate.wgsl's noise,
// spiking.wgsl's Poisson inputs), prepended to their sources; src/backend/rate/noise.rs computes
// the same values on the CPU. A draw is keyed by (seed, step, index), so any element of any step
// comes out the same on any invocation.

// Chris Wellons' lowbias32 integer hash.
fn mix(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// (h >> 8) + 1 over 2^24: a uniform in (0, 1], never 0.
fn unit(h: u32) -> f32 {
    return f32((h >> 8u) + 1u) * (1.0 / 16777216.0);
}

// The key of one step of the stream `seed` (its low and high words).
fn stream_key(seed_lo: u32, seed_hi: u32, step: u32) -> u32 {
    return mix(mix(seed_lo) ^ mix(seed_hi ^ 0x9e3779b9u) ^ step);
}
