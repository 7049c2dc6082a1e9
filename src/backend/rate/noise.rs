//! Counter-based Gaussian noise keyed by (seed, step, index): any element of any step can be
//! drawn alone, in any order, on any thread or GPU invocation, and comes out the same. rate.wgsl
//! computes the same hash; only the last rounding of log, sqrt and sin/cos may differ.
//!
//! Box-Muller on pairs: indices 2k and 2k+1 share two 24-bit uniforms u1, u2 in (0, 1] and take
//! sqrt(-2 ln u1) cos(2 pi u2) and sqrt(-2 ln u1) sin(2 pi u2), two independent N(0, 1) values.
//! The CPU draws eight pairs at a time in SIMD (the `wide` crate's ln and sin_cos), and the
//! one-value form below is lane 0 of the same code, so both give identical bits.

use wide::{f32x8, i32x8, u32x8};

/// Pairs drawn per SIMD call.
const LANES: usize = 8;

/// One N(0, 1) value: element `index` of step `step` of the stream `seed`.
pub fn gaussian_noise(seed: u64, step: u32, index: u32) -> f32 {
    let (cos, sin) = pairs(key(seed, step), u32x8::splat(index / 2));
    if index % 2 == 0 {
        cos.to_array()[0]
    } else {
        sin.to_array()[0]
    }
}

/// Fills `out` with elements `first`, `first + 1`, ... of step `step` of the stream `seed`.
pub fn fill_gaussian_noise(seed: u64, step: u32, first: u32, out: &mut [f32]) {
    let key = key(seed, step);
    let mut pair = first / 2;
    // Position in `out` of the pair's even element; -1 when `first` is odd.
    let mut at = -((first % 2) as isize);
    while at < out.len() as isize {
        let lane_pairs = u32x8::new(std::array::from_fn(|l| pair.wrapping_add(l as u32)));
        let (cos, sin) = pairs(key, lane_pairs);
        for (c, s) in cos.to_array().into_iter().zip(sin.to_array()) {
            for (value, i) in [(c, at), (s, at + 1)] {
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                    *slot = value;
                }
            }
            at += 2;
        }
        pair = pair.wrapping_add(LANES as u32);
    }
}

/// The per-step key, the same in every lane.
fn key(seed: u64, step: u32) -> u32x8 {
    let splat = u32x8::splat;
    mix(mix(splat(seed as u32)) ^ mix(splat((seed >> 32) as u32 ^ 0x9e37_79b9)) ^ splat(step))
}

/// (cos, sin) Box-Muller values of eight pairs.
fn pairs(key: u32x8, pair: u32x8) -> (f32x8, f32x8) {
    let u1 = unit(mix(key ^ mix(pair * u32x8::splat(2))));
    let u2 = unit(mix(key ^ mix(pair * u32x8::splat(2) + u32x8::splat(1))));
    let radius = (f32x8::splat(-2.0) * u1.ln()).sqrt();
    let (sin, cos) = (f32x8::splat(std::f32::consts::TAU) * u2).sin_cos();
    (radius * cos, radius * sin)
}

/// Chris Wellons' lowbias32 integer hash, lane by lane (u32x8 products keep the low 32 bits).
fn mix(mut x: u32x8) -> u32x8 {
    x ^= x >> 16;
    x = x * u32x8::splat(0x7feb_352d);
    x ^= x >> 15;
    x = x * u32x8::splat(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// (h >> 8) + 1 over 2^24: a uniform in (0, 1], never 0, so ln(u1) is finite.
fn unit(h: u32x8) -> f32x8 {
    let top: i32x8 = bytemuck::cast((h >> 8) + u32x8::splat(1));
    f32x8::from_i32x8(top) * f32x8::splat(1.0 / 16_777_216.0)
}
