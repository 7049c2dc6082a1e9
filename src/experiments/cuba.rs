//! The CUBA benchmark (Vogels & Abbott 2005, as benchmark 2 of Brette et al. 2007): a network of
//! LIF neurons with exponential current synapses, 80% excitatory, random connectivity, started
//! from voltages uniform between reset and threshold. Reports each network's mean rate, the mean
//! CV of its neurons' inter-spike intervals, and the synchrony of its population rate.

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::balancing_fig3::positive;
use super::{Experiment, Plot, Report};
use crate::analysis::spikes::Raster;
use crate::backend::spiking::Lif;
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::spiking::{chunk_steps, simulate, Connectivity, SpikingParams, Weights, Wiring};
use crate::scene::arrays::{read_array, read_csr};
use crate::scene::plot::{Marks, Panel, Series};

/// Bins of the population rate, ms.
const RATE_BIN_MS: f64 = 1.0;
/// Neurons the raster plot shows: more would be a solid band.
const RASTER_NEURONS: usize = 500;

/// A spike of step t is at the end of the step.
fn spike_time_ms(step: u32, dt: f64) -> f64 {
    f64::from(step + 1) * dt
}

/// How a scene names the wiring.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WiringSpec {
    /// Each ordered pair with this probability.
    Probability(f64),
    /// Inputs per neuron from each block.
    InDegree {
        excitatory: usize,
        inhibitory: usize,
    },
    /// The weights W[pre, post] (mV) from a file: a dense [n, n] .npy, delivered densely, or a
    /// CSR .npz as scipy.sparse.save_npz writes it.
    File(String),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CubaParams {
    /// Neurons per network.
    pub n: usize,
    pub excitatory_fraction: f64,
    /// Independent networks (each its own start, the same connectivity).
    pub networks: usize,
    /// ms.
    pub dt: f64,
    pub tau_m: f64,
    pub tau_e: f64,
    pub tau_i: f64,
    /// mV.
    pub rest: f32,
    pub threshold: f32,
    pub reset: f32,
    /// Absolute refractory period, ms.
    pub refractory: f64,
    /// Synaptic jumps of I_e and I_i, mV, of seeded wiring (a file holds its own weights).
    #[serde(default)]
    pub w_e: Option<f32>,
    #[serde(default)]
    pub w_i: Option<f32>,
    pub wiring: WiringSpec,
    /// Steps whose spikes stay on the device between read-backs.
    pub record_every: usize,
    /// Another simulator's statistics for the same network: each of ours must fall in its
    /// range when n is the reference's.
    #[serde(default)]
    pub reference: Option<Reference>,
}

/// Ranges of the statistics, from a peer's runs of the same network.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Which simulator, how it was run, and how the ranges were set.
    pub source: String,
    pub n: usize,
    pub mean_rate_hz: [f64; 2],
    pub mean_cv_isi: [f64; 2],
    pub population_fano_1ms: [f64; 2],
}

impl CubaParams {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        let bad =
            |name: &str, message: String| Err(DaleError::scene(format!("{at}.{name}"), message));
        for (name, v) in [
            ("n", self.n),
            ("networks", self.networks),
            ("record_every", self.record_every),
        ] {
            if v == 0 || v > u32::MAX as usize {
                return bad(
                    name,
                    format!("{name} = {v}; allowed: an integer from 1 to {}", u32::MAX),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.excitatory_fraction) {
            return bad(
                "excitatory_fraction",
                format!("{}; allowed: 0 to 1", self.excitatory_fraction),
            );
        }
        for (name, v) in [
            ("dt", self.dt),
            ("tau_m", self.tau_m),
            ("tau_e", self.tau_e),
            ("tau_i", self.tau_i),
        ] {
            positive(at, name, v)?;
        }
        let seeded = !matches!(self.wiring, WiringSpec::File(_));
        for (name, w) in [("w_e", self.w_e), ("w_i", self.w_i)] {
            match (seeded, w) {
                (true, None) => {
                    return bad(
                        name,
                        "missing; seeded wiring needs the synaptic jumps w_e and w_i (mV)".into(),
                    )
                }
                (false, Some(w)) => {
                    return bad(
                        name,
                        format!(
                            "{name} = {w} beside wiring from a file, which holds the weights; \
                             allowed: leave {name} out"
                        ),
                    )
                }
                _ => {}
            }
        }
        for (name, v) in [
            ("rest", self.rest),
            ("threshold", self.threshold),
            ("reset", self.reset),
            ("w_e", self.w_e.unwrap_or(0.0)),
            ("w_i", self.w_i.unwrap_or(0.0)),
        ] {
            if !v.is_finite() {
                return bad(name, format!("{name} = {v}; allowed: a finite value"));
            }
        }
        if self.reset >= self.threshold {
            return bad(
                "reset",
                format!(
                    "reset = {} at or above threshold = {}; allowed: reset < threshold",
                    self.reset, self.threshold
                ),
            );
        }
        if !(self.refractory >= 0.0 && self.refractory / self.dt <= f64::from(u32::MAX)) {
            return bad(
                "refractory",
                format!(
                    "refractory = {}; allowed: 0 <= refractory / dt <= 2^32 - 1",
                    self.refractory
                ),
            );
        }
        let excitatory = self.excitatory();
        match &self.wiring {
            WiringSpec::Probability(p) if !(0.0..=1.0).contains(p) => {
                bad("wiring.probability", format!("{p}; allowed: 0 to 1"))
            }
            WiringSpec::InDegree {
                excitatory: k_e,
                inhibitory: k_i,
            } if *k_e > excitatory.saturating_sub(1) || *k_i > self.n - excitatory => bad(
                "wiring.in_degree",
                format!(
                    "{k_e} excitatory and {k_i} inhibitory inputs; allowed: at most the other \
                     neurons of each block ({} and {})",
                    excitatory.saturating_sub(1),
                    self.n - excitatory
                ),
            ),
            WiringSpec::File(path) if !(path.ends_with(".npy") || path.ends_with(".npz")) => bad(
                "wiring.file",
                format!("{path:?}; allowed: a dense [n, n] .npy or a scipy.sparse CSR .npz"),
            ),
            _ => Ok(()),
        }?;
        if let Some(r) = &self.reference {
            for (name, [low, high]) in [
                ("mean_rate_hz", r.mean_rate_hz),
                ("mean_cv_isi", r.mean_cv_isi),
                ("population_fano_1ms", r.population_fano_1ms),
            ] {
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    return bad(
                        &format!("reference.{name}"),
                        format!("[{low}, {high}]; allowed: finite [low, high] with low <= high"),
                    );
                }
            }
        }
        Ok(())
    }

    fn excitatory(&self) -> usize {
        ((self.excitatory_fraction * self.n as f64).round() as usize).min(self.n)
    }

    /// At most 400 neurons, one network; in-degrees scaled with the network. Wiring from a file
    /// keeps its n.
    pub fn smoke(&mut self) {
        self.networks = 1;
        if matches!(self.wiring, WiringSpec::File(_)) {
            return;
        }
        let scale = 400.0 / self.n.max(400) as f64;
        self.n = self.n.min(400);
        if let WiringSpec::InDegree {
            excitatory,
            inhibitory,
        } = &mut self.wiring
        {
            *excitatory = ((*excitatory as f64 * scale).round() as usize).max(1);
            *inhibitory = ((*inhibitory as f64 * scale).round() as usize).max(1);
        }
    }

    fn lif(&self) -> Lif {
        Lif {
            networks: self.networks,
            n: self.n,
            dt: self.dt,
            tau_m: self.tau_m,
            tau_e: self.tau_e,
            tau_i: self.tau_i,
            rest: self.rest,
            threshold: self.threshold,
            reset: self.reset,
            refractory_steps: (self.refractory / self.dt).round() as u32,
        }
    }

    /// The synapses: drawn from `seed`, or read from the file the wiring names, whose matrix
    /// must be n x n.
    pub fn connectivity(&self, seed: u64) -> Result<Connectivity, DaleError> {
        let (n, excitatory) = (self.n, self.excitatory());
        let weights = (self.w_e.unwrap_or(0.0), self.w_i.unwrap_or(0.0));
        let wiring = match &self.wiring {
            WiringSpec::Probability(q) => Wiring::Probability(*q),
            WiringSpec::InDegree {
                excitatory,
                inhibitory,
            } => Wiring::InDegree {
                excitatory: *excitatory,
                inhibitory: *inhibitory,
            },
            WiringSpec::File(path) if path.ends_with(".npz") => {
                let csr = read_csr(Path::new(path))?;
                if csr.shape != [n, n] {
                    return Err(not_n_by_n(&csr.file, "shape", &csr.shape, n));
                }
                return Connectivity::from_csr(n, excitatory, &csr.indptr, &csr.indices, &csr.data)
                    .map_err(|e| DaleError::Input {
                        file: csr.file,
                        array: e.array.into(),
                        message: e.message,
                    });
            }
            WiringSpec::File(path) => {
                let array = read_array(path)?;
                if array.shape != [n, n] {
                    return Err(not_n_by_n(&array.file, &array.name, &array.shape, n));
                }
                return Ok(Connectivity::dense(n, excitatory, array.data));
            }
        };
        Ok(Connectivity::random(n, excitatory, wiring, weights, seed))
    }
}

fn not_n_by_n(file: &Path, array: &str, shape: &[usize], n: usize) -> DaleError {
    DaleError::Input {
        file: file.to_path_buf(),
        array: array.into(),
        message: format!(
            "a matrix of shape {shape:?}; allowed: [n, n] = [{n}, {n}] (params.n), rows \
             presynaptic"
        ),
    }
}

pub struct Cuba {
    pub params: CubaParams,
    pub steps: usize,
    pub seed: u64,
}

impl Cuba {
    /// The network to simulate: its synapses, and voltages uniform between reset and
    /// threshold, from the seed.
    pub fn inputs(&self) -> Result<SpikingParams, DaleError> {
        let p = &self.params;
        let lif = p.lif();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xc0ba_0001);
        let v0: Vec<f32> = (0..lif.len())
            .map(|_| p.reset + (p.threshold - p.reset) * rng.random::<f32>())
            .collect();
        Ok(SpikingParams {
            lif,
            connectivity: p.connectivity(self.seed)?,
            v0,
            steps: self.steps,
            record_every: p.record_every,
        })
    }
}

impl Experiment for Cuba {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        let p = &self.params;
        let chunk = chunk_steps(p.record_every, self.steps, p.n.saturating_mul(p.networks));
        super::fits(
            backend,
            "params.networks",
            p.networks,
            "the spike lists hold record_every x networks x n values",
            |b| b.checked_mul(p.n)?.checked_mul(chunk),
        )
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        let p = &self.params;
        let inputs = self.inputs()?;
        let lif = inputs.lif;
        let synapses = inputs.connectivity.synapses();
        let delivery = match inputs.connectivity.weights {
            Weights::Sparse(_) => "sparse (CSR)",
            Weights::Dense(_) => "dense",
        };
        let run = simulate(backend, &inputs)?;
        progress(self.steps);

        let mut report = Report::default();
        let mut per_network = Vec::new();
        let (mut shortest, mut rates_hz) = (f64::INFINITY, Vec::new());
        for b in 0..p.networks as u32 {
            let spikes: Vec<(u32, u32)> = run
                .spikes
                .iter()
                .filter(|(_, net, _)| *net == b)
                .map(|(t, _, k)| (*t, *k))
                .collect();
            let raster = Raster {
                spikes: &spikes,
                n: p.n,
                steps: self.steps,
                dt: p.dt,
            };
            if let Some(s) = raster.shortest_interval() {
                shortest = shortest.min(s);
            }
            if b == 0 {
                rates_hz = raster.rates();
                let rate: Vec<f32> = raster
                    .population_counts(RATE_BIN_MS)
                    .iter()
                    .map(|c| (c / (p.n as f64 * RATE_BIN_MS * 1e-3)) as f32)
                    .collect();
                report.plots.push(Plot {
                    file: "cuba.png".into(),
                    panels: vec![
                        Panel {
                            title: format!(
                                "spikes of network 0, neurons 0 to {} of {}",
                                RASTER_NEURONS.min(p.n) - 1,
                                p.n
                            ),
                            x_label: "time (ms)".into(),
                            y_label: "neuron".into(),
                            series: vec![Series {
                                label: String::new(),
                                points: spikes
                                    .iter()
                                    .filter(|(_, k)| (*k as usize) < RASTER_NEURONS)
                                    .map(|(t, k)| (spike_time_ms(*t, p.dt), f64::from(*k)))
                                    .collect(),
                                band: Vec::new(),
                            }],
                            log_y: false,
                            marks: Marks::Dots,
                        },
                        Panel {
                            title: format!(
                                "population rate of network 0 ({RATE_BIN_MS} ms bins), N = {}",
                                p.n
                            ),
                            x_label: "time (ms)".into(),
                            y_label: "rate (Hz)".into(),
                            series: vec![Series {
                                label: "population".into(),
                                points: rate
                                    .iter()
                                    .enumerate()
                                    .map(|(k, r)| ((k as f64 + 0.5) * RATE_BIN_MS, f64::from(*r)))
                                    .collect(),
                                band: Vec::new(),
                            }],
                            log_y: false,
                            marks: Marks::Lines,
                        },
                        Panel {
                            title: "neurons' rates".into(),
                            x_label: "rate (Hz)".into(),
                            y_label: "neurons".into(),
                            series: vec![Series {
                                label: "network 0".into(),
                                points: rate_histogram(&rates_hz),
                                band: Vec::new(),
                            }],
                            log_y: false,
                            marks: Marks::Bars,
                        },
                    ],
                });
                report.array("population_rate.npy", vec![rate.len()], rate);
            }
            per_network.push(json!({
                "mean_rate_hz": raster.mean_rate(),
                "mean_cv_isi": raster.mean_cv(),
                "population_fano_1ms": raster.population_fano(RATE_BIN_MS),
            }));
        }
        let refractory = f64::from(lif.refractory_steps) * p.dt;
        report.check(
            "no neuron spikes again within its refractory period",
            shortest > refractory,
        );
        report.check(
            "the network is active (spikes in every network)",
            per_network
                .iter()
                .all(|f| f["mean_rate_hz"].as_f64().is_some_and(|r| r > 0.0)),
        );
        match &p.reference {
            Some(r) if r.n == p.n => {
                for (name, [low, high]) in [
                    ("mean_rate_hz", r.mean_rate_hz),
                    ("mean_cv_isi", r.mean_cv_isi),
                    ("population_fano_1ms", r.population_fano_1ms),
                ] {
                    report.check(
                        format!("{name} of every network within the reference's [{low}, {high}]"),
                        per_network
                            .iter()
                            .all(|f| f[name].as_f64().is_some_and(|v| v >= low && v <= high)),
                    );
                }
            }
            _ => {}
        }
        report.figures = json!({
            "n": p.n,
            "networks": p.networks,
            "synapses": synapses,
            "delivery": delivery,
            "seconds": self.steps as f64 * p.dt * 1e-3,
            "shortest_isi_ms": shortest.is_finite().then_some(shortest),
            "per_network": per_network,
            "synchrony_means": "the Fano factor of the population's spike count in 1 ms bins: 1 for independent Poisson neurons",
            "reference": p.reference,
            "reference_checks": match &p.reference {
                Some(r) if r.n == p.n => "run",
                Some(_) => "skipped: n differs from the reference's",
                None => "none given",
            },
        });
        let times: Vec<f32> = run
            .spikes
            .iter()
            .map(|(t, _, _)| spike_time_ms(*t, p.dt) as f32)
            .collect();
        let neurons: Vec<f32> = run.spikes.iter().map(|(_, _, k)| *k as f32).collect();
        let networks: Vec<f32> = run.spikes.iter().map(|(_, b, _)| *b as f32).collect();
        report.array("spike_times_ms.npy", vec![times.len()], times);
        report.array("spike_neurons.npy", vec![neurons.len()], neurons);
        report.array("spike_networks.npy", vec![networks.len()], networks);
        report.array(
            "neuron_rates_hz.npy",
            vec![rates_hz.len()],
            rates_hz.iter().map(|r| *r as f32).collect(),
        );
        Ok(report)
    }
}

/// Neurons per 1 Hz bin of rate.
fn rate_histogram(rates: &[f64]) -> Vec<(f64, f64)> {
    let top = rates.iter().copied().fold(0.0, f64::max).ceil() as usize + 1;
    let mut counts = vec![0.0; top];
    for r in rates {
        counts[(*r as usize).min(top - 1)] += 1.0;
    }
    counts
        .iter()
        .enumerate()
        .map(|(k, c)| (k as f64 + 0.5, *c))
        .collect()
}
