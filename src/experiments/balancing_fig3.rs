//! 001 Fig. 3: two-neuron networks under the balancing flow against the closed forms (eq. 29-31):
//! a single feedforward synapse decays with no finite balance (eq. 31); reciprocal pairs follow
//! the tanh (q0 < 1) and coth (q0 > 1) branches of eq. 29 to the geometric mean of their costs.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{fits, Experiment, Plot, Report};
use crate::backend::balance::Aggregate;
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::balancing::{balance, BalanceParams, Method, Networks, Topology};
use crate::scene::plot::{Marks, Panel, Series};

/// Two-neuron networks, each given by its initial costs (c12, c21); c21 = 0 is the single
/// feedforward synapse of eq. 31. All pairs run as one batch.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwoNeurons {
    pub pairs: Vec<[f64; 2]>,
    pub p: f32,
    pub dt: f32,
}

impl TwoNeurons {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        positive(at, "p", f64::from(self.p))?;
        positive(at, "dt", f64::from(self.dt))?;
        if self.pairs.is_empty() {
            return Err(DaleError::scene(
                format!("{at}.pairs"),
                "no pairs; allowed: one or more [c12, c21] with c12 > 0, c21 >= 0",
            ));
        }
        for (i, [c12, c21]) in self.pairs.iter().enumerate() {
            if !(*c12 > 0.0 && *c21 >= 0.0 && c12.is_finite() && c21.is_finite()) {
                return Err(DaleError::scene(
                    format!("{at}.pairs[{i}]"),
                    format!("[{c12}, {c21}]; allowed: c12 > 0 and c21 >= 0, finite"),
                ));
            }
        }
        Ok(())
    }
}

/// `name` must be finite and > 0.
pub fn positive(at: &str, name: &str, v: f64) -> Result<(), DaleError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(DaleError::scene(
            format!("{at}.{name}"),
            format!("{name} = {v}; allowed: a finite value > 0"),
        ))
    }
}

pub struct Fig3 {
    pub params: TwoNeurons,
    /// Flow iterations.
    pub steps: usize,
}

impl Experiment for Fig3 {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        fits(
            backend,
            "params.pairs",
            self.params.pairs.len(),
            "J holds 4 values per pair",
            |g| g.checked_mul(4),
        )
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        _: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        run(&self.params, self.steps, backend)
    }
}

fn run(
    TwoNeurons { pairs, p, dt }: &TwoNeurons,
    steps: usize,
    backend: &mut dyn Backend,
) -> Result<Report, DaleError> {
    let (p, dt) = (*p, *dt);
    let groups = pairs.len();
    let pf = f64::from(p);
    // J12 (from 2 to 1) and J21 with |J|^p = c; J21 inhibitory, to show that signs stay.
    let j: Vec<f32> = pairs
        .iter()
        .flat_map(|[c12, c21]| {
            [
                0.0,
                c12.powf(1.0 / pf) as f32,
                -(c21.powf(1.0 / pf) as f32),
                0.0,
            ]
        })
        .collect();
    let nets = Networks::recurrent(groups, 2, &j);
    let params = BalanceParams {
        p,
        aggregate: Aggregate::Sum,
        method: Method::Flow { dt },
        max_iterations: steps,
        tol: 0.0,
        h_every: 1,
        // Fig. 3 shows the flow itself, on the feedforward pair too (eq. 31: no finite balance).
        topology: Topology::Whole,
    };
    let b = balance(backend, &nets, &params)?;
    let samples = b.h_iterations.len();
    let times: Vec<f64> = b
        .h_iterations
        .iter()
        .map(|&s| s as f64 * f64::from(dt))
        .collect();
    // Costs along the run, [samples, pairs, 2], and the closed forms (eq. 29-31) with gamma p = 1.
    let mut costs = vec![0.0f32; samples * groups * 2];
    let mut closed = vec![0.0f32; samples * groups * 2];
    let mut figures = Vec::new();
    let mut report = Report::default();
    for (g, &[c12, c21]) in pairs.iter().enumerate() {
        let chat = (c12 * c21).sqrt();
        let q0 = (c12 / c21).sqrt();
        let k = 2.0 * pf * chat;
        let exact = |t: f64| -> (f64, f64) {
            if c21 == 0.0 {
                (c12 / (2.0 * c12 * pf * t + 1.0), 0.0)
            } else if q0 < 1.0 {
                let q = (k * t + q0.atanh()).tanh();
                (chat * q, chat / q)
            } else if q0 > 1.0 {
                let q = 1.0 / (k * t + (1.0 / q0).atanh()).tanh();
                (chat * q, chat / q)
            } else {
                (chat, chat)
            }
        };
        let mut worst = 0.0f64;
        for s in 0..samples {
            let h = &b.h_trajectory[(s * groups + g) * 2..][..2];
            let d = pf * f64::from(h[1] - h[0]);
            let (m12, m21) = (c12 * d.exp(), c21 * (-d).exp());
            let (e12, e21) = exact(times[s]);
            worst = worst.max((m12 - e12).abs().max((m21 - e21).abs()) / c12.max(c21));
            costs[(s * groups + g) * 2..][..2].copy_from_slice(&[m12 as f32, m21 as f32]);
            closed[(s * groups + g) * 2..][..2].copy_from_slice(&[e12 as f32, e21 as f32]);
        }
        let end = &costs[((samples - 1) * groups + g) * 2..][..2];
        let (branch, paper_end) = match (c21 == 0.0, q0 < 1.0) {
            (true, _) => (
                "feedforward, eq. 31: c12 -> 0, no finite balance",
                json!([exact(times[samples - 1]).0, 0.0]),
            ),
            (false, true) => (
                "reciprocal, q0 < 1: tanh branch of eq. 29",
                json!([chat, chat]),
            ),
            (false, false) => (
                "reciprocal, q0 > 1: coth branch of eq. 29",
                json!([chat, chat]),
            ),
        };
        let total: Vec<f64> = (0..samples)
            .map(|s| f64::from(costs[(s * groups + g) * 2] + costs[(s * groups + g) * 2 + 1]))
            .collect();
        // Forward Euler's global error stays below k dt relative, k = 2 p max(c) the fastest
        // rate of eq. 29-31: each step errs by (k dt)^2 / 2 and the flow contracts.
        let euler_tol = 2.0 * pf * c12.max(c21) * f64::from(dt);
        let never_increased = total.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-6));
        let signs_kept = b.j[g * 4 + 1] > 0.0 && (c21 == 0.0 || b.j[g * 4 + 2] < 0.0);
        report.check(
            format!("pair_{g}_follows_eq29_31_within_euler_error"),
            worst <= euler_tol,
        );
        report.check(
            format!("pair_{g}_total_cost_never_increased"),
            never_increased,
        );
        report.check(format!("pair_{g}_signs_kept"), signs_kept);
        figures.push(json!({
            "initial_costs": [c12, c21],
            "case": branch,
            "final_costs": { "measured": end, "paper": paper_end },
            "largest_deviation_from_closed_form_relative": worst,
            "euler_error_bound_relative": euler_tol,
            "total_cost_never_increased": never_increased,
            "signs_kept": signs_kept,
        }));
    }
    report.figures = json!({
        "pairs": figures,
        "rate_convention": "the flow runs with gamma p = 1 (eq. 17), so q(t) = tanh(k t + atanh q0) with k = 2 p c_hat; the paper prints k = 2 p^2 c_hat, which is gamma = 1",
        "iterations": b.iterations,
        "dt": dt,
    });
    let times32: Vec<f32> = times.iter().map(|t| *t as f32).collect();
    report.array("costs.npy", vec![samples, groups, 2], costs.clone());
    report.array(
        "costs_closed_form.npy",
        vec![samples, groups, 2],
        closed.clone(),
    );
    report.array("times.npy", vec![samples], times32);
    let mut panels = Vec::new();
    for (g, pair) in pairs.iter().enumerate() {
        let series = |label: &str, data: &[f32], side: usize| Series {
            label: label.into(),
            points: (0..samples)
                .map(|s| (times[s], f64::from(data[(s * groups + g) * 2 + side])))
                .collect(),
            band: Vec::new(),
        };
        panels.push(Panel {
            title: format!(
                "network {g}: initial costs c12 = {}, c21 = {}",
                pair[0], pair[1]
            ),
            x_label: "t".into(),
            y_label: "synaptic cost".into(),
            series: vec![
                series("c12 (flow)", &costs, 0),
                series("c21 (flow)", &costs, 1),
                series("c12 (eq. 29 / 31)", &closed, 0),
                series("c21 (eq. 29 / 31)", &closed, 1),
            ],
            log_y: false,
            marks: Marks::Lines,
        });
    }
    report.plots.push(Plot {
        file: "balancing_fig3.png".into(),
        panels,
    });
    Ok(report)
}
