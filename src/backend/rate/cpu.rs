//! The rate-dynamics ops on the CPU. Twin: shaders/rate.wgsl.

use rayon::prelude::*;

use super::noise::fill_gaussian_noise;
use super::{EulerStep, NoiseOn};
use crate::backend::cpu::BLOCK;
use crate::backend::Phi;

pub(super) fn euler_step(xs: &mut [f32], rs: &mut [f32], d: &[f32], step: EulerStep) {
    xs.par_chunks_mut(BLOCK)
        .zip(rs.par_chunks_mut(BLOCK))
        .zip(d.par_chunks(BLOCK))
        .enumerate()
        .for_each(|(block, ((xb, rb), db))| {
            // Same operation order as rate.wgsl, so both backends round alike; each pass is
            // a plain loop over the block so that it compiles to SIMD.
            for (xi, di) in xb.iter_mut().zip(db) {
                *xi += step.leak * (*di - *xi);
            }
            let mut noise = [0.0f32; BLOCK];
            let noise = &mut noise[..xb.len()];
            if step.noise_std != 0.0 {
                fill_gaussian_noise(step.seed, step.step, (block * BLOCK) as u32, noise);
                noise.iter_mut().for_each(|z| *z *= step.noise_std);
                if step.noise_on == NoiseOn::State {
                    for (xi, zi) in xb.iter_mut().zip(noise.iter()) {
                        *xi += *zi;
                    }
                }
            }
            match step.phi {
                Phi::Linear => rb.copy_from_slice(xb),
                Phi::Relu => rb
                    .iter_mut()
                    .zip(xb.iter())
                    .for_each(|(ri, xi)| *ri = xi.max(0.0)),
                Phi::Tanh => rb
                    .iter_mut()
                    .zip(xb.iter())
                    .for_each(|(ri, xi)| *ri = xi.tanh()),
            }
            if step.noise_std != 0.0 && step.noise_on == NoiseOn::Rates {
                for (ri, zi) in rb.iter_mut().zip(noise.iter()) {
                    *ri += *zi;
                }
            }
        });
}
