//! Counter-based Gaussian noise keyed by (seed, step, index): any element of any step can be
//! drawn alone, in any order, on any thread or GPU invocation, and comes out the same. rate.wgsl
//! computes the same hash; only the last rounding of log, sqrt and sin/cos may differ.
//!
//! Box-Muller on pairs: indices 2k and 2k+1 share two 24-bit uniforms u1, u2 in (0, 1] and take
//! sqrt(-2 ln u1) cos(2 pi u2) and sqrt(-2 ln u1) sin(2 pi u2), two independent N(0, 1) values.
//! The CPU draws LANES pairs at a time, in plain lane-by-lane arithmetic with no branches that
//! the compiler vectorises for each instruction set (cpu::simd); ln, sin and cos are our own
//! polynomials (Cephes' single-precision ones), so every instruction set, and the one-value form
//! below, give the same bits.

use crate::backend::cpu::simd::{Isa, Kernel};

/// Pairs drawn per call: one 512-bit vector of u32.
const LANES: usize = 16;

/// One N(0, 1) value: element `index` of step `step` of the stream `seed`.
pub fn gaussian_noise(seed: u64, step: u32, index: u32) -> f32 {
    let (cos, sin) = pair(key(seed, step), index / 2);
    if index.is_multiple_of(2) {
        cos
    } else {
        sin
    }
}

/// One uniform value in (0, 1], in steps of 2^-24: element `index` of step `step` of the stream
/// `seed` (shaders/hash.wgsl computes the same). It shares the hash with `gaussian_noise`: give
/// the two different seeds.
pub fn uniform(seed: u64, step: u32, index: u32) -> f32 {
    unit(mix(key(seed, step) ^ mix(index)))
}

/// Fills `out` with elements `first`, `first + 1`, ... of step `step` of the stream `seed`.
pub fn fill_gaussian_noise(seed: u64, step: u32, first: u32, out: &mut [f32]) {
    Isa::detected().run(Fill {
        seed,
        step,
        first,
        out,
    })
}

/// `fill_gaussian_noise` compiled for each instruction set.
pub struct Fill<'a> {
    pub seed: u64,
    pub step: u32,
    pub first: u32,
    pub out: &'a mut [f32],
}

impl Kernel for Fill<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Fill {
            seed,
            step,
            first,
            out,
        } = self;
        let key = key(seed, step);
        // An odd first element is the sine of its pair: draw that pair alone, then whole pairs.
        let (head, rest) = if first % 2 == 1 && !out.is_empty() {
            let (head, rest) = out.split_at_mut(1);
            head[0] = pair(key, first / 2).1;
            (1u32, rest)
        } else {
            (0, out)
        };
        let mut first_pair = first.wrapping_add(head) / 2;
        for chunk in rest.chunks_mut(2 * LANES) {
            let (mut cos, mut sin) = ([0.0f32; LANES], [0.0f32; LANES]);
            for l in 0..LANES {
                (cos[l], sin[l]) = pair(key, first_pair.wrapping_add(l as u32));
            }
            for (k, v) in chunk.iter_mut().enumerate() {
                *v = if k % 2 == 0 { cos[k / 2] } else { sin[k / 2] };
            }
            first_pair = first_pair.wrapping_add(LANES as u32);
        }
    }
}

/// The per-step key.
#[inline(always)]
fn key(seed: u64, step: u32) -> u32 {
    mix(mix(seed as u32) ^ mix((seed >> 32) as u32 ^ 0x9e37_79b9) ^ step)
}

/// The (cos, sin) Box-Muller values of one pair; `Fill` runs LANES of them side by side, which
/// the compiler vectorises (every step is plain lane arithmetic).
#[inline(always)]
fn pair(key: u32, pair: u32) -> (f32, f32) {
    let u1 = unit(mix(key ^ mix(pair.wrapping_mul(2))));
    let u2 = unit(mix(key ^ mix(pair.wrapping_mul(2).wrapping_add(1))));
    let radius = (-2.0 * ln_unit(u1)).sqrt();
    let (s, c) = sin_cos_turns(u2);
    (radius * c, radius * s)
}

/// Chris Wellons' lowbias32 integer hash.
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// (h >> 8) + 1 over 2^24: a uniform in (0, 1], never 0, so ln(u1) is finite.
#[inline(always)]
fn unit(h: u32) -> f32 {
    ((h >> 8) + 1) as i32 as f32 * (1.0 / 16_777_216.0)
}

/// ln u for a normal u in (0, 1] (Cephes logf: u = m 2^e with m in [sqrt(1/2), sqrt(2)), then
/// a degree-9 polynomial in m - 1; within 2 ulp). Branch-free, so that it vectorises.
#[inline(always)]
fn ln_unit(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [1/2, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let x = if small { m + m - 1.0 } else { m - 1.0 };
    let z = x * x;
    let mut y = 7.037_683_6e-2;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_5e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y * x + c;
    }
    let e = e as f32;
    let y = y * x * z + e * -2.121_944_4e-4 - 0.5 * z;
    x + y + e * 0.693_359_4
}

/// (sin 2 pi t, cos 2 pi t) for t in [0, 1]: t = q/4 + r with |r| <= 1/8 (exact for the 24-bit
/// uniforms), Cephes' sinf and cosf polynomials on 2 pi r in [-pi/4, pi/4], then the quadrant q
/// swaps and negates them. Branch-free.
#[inline(always)]
fn sin_cos_turns(t: f32) -> (f32, f32) {
    let q = (t * 4.0 + 0.5) as i32; // t >= 0, so truncation rounds half up
    let a = (t - q as f32 * 0.25) * std::f32::consts::TAU;
    let z = a * a;
    let s = a + a * z * ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1);
    let c = 1.0 - 0.5 * z + z * z * ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2);
    let (sin, cos) = if q & 1 == 0 { (s, c) } else { (c, s) };
    let flip = |v: f32, negate: bool| f32::from_bits(v.to_bits() ^ ((negate as u32) << 31));
    (flip(sin, q & 2 != 0), flip(cos, (q + 1) & 2 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set's copy draws the portable copy's bits, and the polynomials stay
    /// within 2 ulp-scale of f64's ln, sin and cos over the whole range of the 24-bit uniforms.
    #[test]
    fn noise_is_the_same_on_every_instruction_set_and_the_polynomials_are_accurate() {
        for (first, len) in [(0u32, 1000usize), (7, 333), (u32::MAX - 40, 41)] {
            let draw = |isa: Isa| {
                let mut out = vec![f32::NAN; len];
                isa.run(Fill {
                    seed: 3,
                    step: 9,
                    first,
                    out: &mut out,
                });
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let portable = draw(Isa::Portable);
            for isa in Isa::available() {
                assert!(
                    draw(isa) == portable,
                    "{} differs from portable",
                    isa.name()
                );
            }
        }
        for k in (1u32..=1 << 24)
            .step_by(997)
            .chain([1, 2, 1 << 23, (1 << 24) - 1, 1 << 24])
        {
            let u = k as f32 / 16_777_216.0;
            let (ln, exact) = (ln_unit(u), f64::from(u).ln());
            assert!(
                (f64::from(ln) - exact).abs()
                    <= 2.0 * f64::from(f32::EPSILON) * exact.abs().max(1e-7),
                "ln {u}: {ln} vs {exact}"
            );
            let (s, c) = sin_cos_turns(u);
            let angle = std::f64::consts::TAU * f64::from(u);
            assert!(
                (f64::from(s) - angle.sin()).abs() <= 2e-7,
                "sin 2 pi {u}: {s} vs {}",
                angle.sin()
            );
            assert!(
                (f64::from(c) - angle.cos()).abs() <= 2e-7,
                "cos 2 pi {u}: {c} vs {}",
                angle.cos()
            );
        }
    }
}
