//! The training ops on the CPU. Twins: shaders/train.wgsl.

use rayon::prelude::*;

use super::{EulerBackward, SgdStep};
use crate::backend::cpu::BLOCK;

/// `delta` holds both delta[next..] (read) and delta[out..] (written); the ranges must not
/// overlap, which the caller checked.
pub(super) fn euler_backward(
    delta: &mut [f32],
    back: &[f32],
    x: &[f32],
    readout: &[f32],
    s: EulerBackward,
) {
    let len = s.len;
    let (out, next): (&mut [f32], &[f32]) = if s.out < s.next {
        let (lo, hi) = delta.split_at_mut(s.next);
        (&mut lo[s.out..s.out + len], &hi[..len])
    } else {
        let (lo, hi) = delta.split_at_mut(s.out);
        (&mut hi[..len], &lo[s.next..s.next + len])
    };
    let (x, readout) = (&x[s.x..s.x + len], &readout[s.readout..s.readout + len]);
    out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, o)| {
        let at = b * BLOCK;
        for (k, v) in o.iter_mut().enumerate() {
            let i = at + k;
            let through_j = s.leak * s.phi.slope(x[i]) * back[i];
            *v = (1.0 - s.leak) * next[i] + through_j + readout[i];
        }
    });
}

pub(super) fn scaled_difference(a: &[f32], b: &[f32], out: &mut [f32], scale: f32) {
    out.par_chunks_mut(BLOCK)
        .zip(a.par_chunks(BLOCK))
        .zip(b.par_chunks(BLOCK))
        .for_each(|((o, a), b)| {
            o.iter_mut()
                .zip(a)
                .zip(b)
                .for_each(|((o, a), b)| *o = scale * (a - b));
        });
}

pub(super) fn sgd_step(w: &mut [f32], grad: &[f32], s: SgdStep) {
    let (w, grad) = (
        &mut w[s.offset..s.offset + s.len],
        &grad[s.offset..s.offset + s.len],
    );
    w.par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK))
        .for_each(|(w, g)| {
            w.iter_mut()
                .zip(g)
                .for_each(|(w, g)| *w -= s.lr * (s.grad_scale * g + 2.0 * s.l2 * *w));
        });
}
