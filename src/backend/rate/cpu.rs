//! The rate-dynamics ops on the CPU. Twin: shaders/rate.wgsl.

use rayon::prelude::*;

use super::noise::Fill;
use super::{EulerStep, NoiseOn, ProjectedStep};
use crate::backend::cpu::simd::{Isa, Kernel};
use crate::backend::cpu::BLOCK;
use crate::backend::Phi;

/// As rate.wgsl's `projected_step`.
pub(super) fn projected_step(r: &mut [f32], v: &[f32], thresholds: &[f32], s: ProjectedStep) {
    let rate = s.rate;
    r.par_chunks_mut(s.n)
        .zip(v.par_chunks(s.n))
        .for_each(|(r, v)| {
            for ((r, v), t) in r.iter_mut().zip(v).zip(thresholds) {
                *r = (*r + rate * (*v - *t)).max(0.0);
            }
        });
}

pub(super) fn euler_step(xs: &mut [f32], rs: &mut [f32], d: &[f32], step: EulerStep) {
    let isa = Isa::detected();
    xs.par_chunks_mut(BLOCK)
        .zip(rs.par_chunks_mut(BLOCK))
        .zip(d.par_chunks(BLOCK))
        .enumerate()
        .for_each(|(block, ((x, r), drive))| {
            isa.run(EulerBlock {
                x,
                r,
                drive,
                first: block * BLOCK,
                step,
            })
        });
}

/// One block of `euler_step`, elements `first..first + x.len()`, compiled for each instruction
/// set.
struct EulerBlock<'a> {
    x: &'a mut [f32],
    r: &'a mut [f32],
    drive: &'a [f32],
    first: usize,
    step: EulerStep,
}

impl Kernel for EulerBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let EulerBlock {
            x,
            r,
            drive,
            first,
            step,
        } = self;
        // Same operation order as rate.wgsl, so both backends round alike; each pass is a plain
        // loop over the block so that it compiles to SIMD.
        for (xi, di) in x.iter_mut().zip(drive) {
            *xi += step.leak * (*di - *xi);
        }
        let mut noise = [0.0f32; BLOCK];
        let noise = &mut noise[..x.len()];
        if step.noise_std != 0.0 {
            Fill {
                seed: step.seed,
                step: step.step,
                first: first as u32,
                out: noise,
            }
            .run();
            noise.iter_mut().for_each(|z| *z *= step.noise_std);
            if step.noise_on == NoiseOn::State {
                for (xi, zi) in x.iter_mut().zip(noise.iter()) {
                    *xi += *zi;
                }
            }
        }
        match step.phi {
            Phi::Linear => r.copy_from_slice(x),
            Phi::Relu => r
                .iter_mut()
                .zip(x.iter())
                .for_each(|(ri, xi)| *ri = xi.max(0.0)),
            Phi::Tanh => r
                .iter_mut()
                .zip(x.iter())
                .for_each(|(ri, xi)| *ri = xi.tanh()),
        }
        if step.noise_std != 0.0 && step.noise_on == NoiseOn::Rates {
            for (ri, zi) in r.iter_mut().zip(noise.iter()) {
                *ri += *zi;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set's copy gives the portable copy's bits: ragged blocks, every phi,
    /// noise on the state and on the rates, a first element that is odd (mid-pair).
    #[test]
    fn euler_block_is_the_same_on_every_instruction_set() {
        let len = 1000;
        let drive: Vec<f32> = (0..len).map(|k| (k as f32 * 0.37).sin() * 3.0).collect();
        for phi in [Phi::Linear, Phi::Relu, Phi::Tanh] {
            for noise_on in [NoiseOn::State, NoiseOn::Rates] {
                for (first, n) in [(0, len), (4097, 333), (8192, 17)] {
                    let step = EulerStep {
                        len: n,
                        leak: 0.1,
                        phi,
                        noise_std: 0.3,
                        seed: 11,
                        step: 5,
                        noise_on,
                    };
                    let run = |isa: Isa| {
                        let mut x: Vec<f32> = (0..n).map(|k| (k as f32 * 0.11).cos()).collect();
                        let mut r = vec![0.0f32; n];
                        isa.run(EulerBlock {
                            x: &mut x,
                            r: &mut r,
                            drive: &drive[..n],
                            first,
                            step,
                        });
                        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        (bits(&x), bits(&r))
                    };
                    let portable = run(Isa::Portable);
                    for isa in Isa::available() {
                        assert!(
                            run(isa) == portable,
                            "{} differs from portable: {phi:?} {noise_on:?} first {first}",
                            isa.name()
                        );
                    }
                }
            }
        }
    }
}
