//! The training family (shaders/train.wgsl, src/backend/train/): the adjoint Euler step, output
//! errors and the gradient step on each backend, against the f64 formulas (CPU) and the CPU
//! backend (GPU).

mod common;

use common::{backend_tests, check_op, normal, Tol};
use dale::backend::train::{EulerBackward, SgdStep, TrainOps};
use dale::backend::{Backend, BufferOps, Phi};

const NS: [usize; 4] = [1, 63, 257, 4099];

const BS: [usize; 2] = [1, 33];

backend_tests! {
    fn euler_backward_for_every_phi_at_offsets(side: &Side) {
        for (i, &n) in NS.iter().enumerate() {
            for &b in &BS {
                let len = n * b;
                // Three time slots of every array; the step reads slot 2 of delta and writes slot 1.
                let delta = normal(3 * len, 800 + i as u64);
                let back = normal(len, 801 + i as u64);
                let x = normal(3 * len, 802 + i as u64);
                let readout = normal(3 * len, 803 + i as u64);
                for phi in [Phi::Linear, Phi::Relu, Phi::Tanh] {
                    let spec = EulerBackward {
                        len,
                        leak: 0.1,
                        phi,
                        next: 2 * len,
                        out: len,
                        x: 2 * len,
                        readout: len,
                    };
                    let run = |be: &mut dyn Backend| {
                        let d = be.alloc_from("delta", &delta).unwrap();
                        let bk = be.alloc_from("back", &back).unwrap();
                        let xb = be.alloc_from("x", &x).unwrap();
                        let r = be.alloc_from("readout", &readout).unwrap();
                        be.euler_backward(d, bk, xb, r, spec);
                        be.download(d, 0, 3 * len).unwrap()
                    };
                    let want: Vec<f32> = (0..3 * len)
                        .map(|e| {
                            if !(len..2 * len).contains(&e) {
                                return delta[e];
                            }
                            let k = e - len;
                            let xv = x[2 * len + k] as f64;
                            let slope = match phi {
                                Phi::Linear => 1.0,
                                Phi::Relu => f64::from(u8::from(xv > 0.0)),
                                Phi::Tanh => 1.0 - xv.tanh().powi(2),
                            };
                            ((1.0 - 0.1) * delta[2 * len + k] as f64
                                + 0.1 * slope * back[k] as f64
                                + readout[len + k] as f64) as f32
                        })
                        .collect();
                    // Three terms, each with one or two roundings; tanh' within a few ulp.
                    let tol = Tol {
                        rel: 8.0 * f32::EPSILON as f64,
                        why: "three rounded terms, tanh within 4 ulp",
                    };
                    let what = format!("euler_backward {spec:?}");
                    check_op(side, &what, tol, || Some(want), run);
                }
            }
        }
    }
}

backend_tests! {
    fn scaled_difference_and_sgd_step(side: &Side) {
        for (i, &n) in NS.iter().enumerate() {
            let len = 3 * n;
            let (a, b) = (normal(len, 900 + i as u64), normal(len, 901 + i as u64));
            let run = |be: &mut dyn Backend| {
                let (ab, bb) = (
                    be.alloc_from("a", &a).unwrap(),
                    be.alloc_from("b", &b).unwrap(),
                );
                let out = be.alloc("out", len).unwrap();
                be.scaled_difference(ab, bb, out, len, 0.25);
                // Then a step on the middle third only, with out as the gradient.
                be.sgd_step(
                    ab,
                    out,
                    SgdStep {
                        offset: n,
                        len: n,
                        lr: 0.5,
                        grad_scale: 0.7,
                        l2: 0.3,
                    },
                );
                let mut res = be.download(out, 0, len).unwrap();
                res.extend(be.download(ab, 0, len).unwrap());
                res
            };
            let diff: Vec<f64> = (0..len)
                .map(|e| 0.25 * (a[e] as f64 - b[e] as f64))
                .collect();
            let mut want: Vec<f32> = diff.iter().map(|v| *v as f32).collect();
            want.extend((0..len).map(|e| {
                if (n..2 * n).contains(&e) {
                    (a[e] as f64 - 0.5 * (0.7 * diff[e] + 0.6 * a[e] as f64)) as f32
                } else {
                    a[e]
                }
            }));
            let tol = Tol {
                rel: 4.0 * f32::EPSILON as f64,
                why: "two or three rounded operations",
            };
            check_op(
            side,
                &format!("scaled_difference, sgd_step n {n}"),
                tol,
                || Some(want),
                run,
            );
        }
    }
}
