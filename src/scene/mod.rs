//! Scenes: JSON files that name a model, its parameters (in the paper's symbols), the seed, the
//! number of steps, what to monitor and what to write. Unknown fields and out-of-range values are
//! errors naming the JSON path, the value and what is allowed.

pub mod arrays;
pub mod images;
pub mod output;
pub mod plot;
pub mod runner;

use serde::{Deserialize, Serialize};

use crate::error::DaleError;
use crate::experiments::balance_network::{inputs_from_files, BalanceNetwork, BalanceSettings};
use crate::experiments::balancing_fig3::{Fig3, TwoNeurons};
use crate::experiments::balancing_fig4::{CdiParams, Fig4};
use crate::experiments::balancing_fig5::{Fig5, RingPerturbation};
use crate::experiments::cuba::{Cuba, CubaParams};
use crate::experiments::disco_capacity::{Capacity, CapacityParams};
use crate::experiments::disco_geodesic::{Geodesic, GeodesicParams};
use crate::experiments::disco_teacher::{TeacherParams, TeacherStudent};
use crate::experiments::minimax_fig1::{Fig1Params, MinimaxFig1};
use crate::experiments::minimax_tasks::{
    Fig2ImageParams, Fig2Params, Fig3Params, GridParams, MinimaxFig2, MinimaxFig2Image,
    MinimaxFig3, MinimaxGrid, MinimaxRing, RingParams,
};
use crate::experiments::rate::RateRun;
use crate::experiments::Experiment;
use crate::models::rate::{Monitors, RateParams};

/// Models a scene may name.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    Rate,
    Balancing,
    Disco,
    Spiking,
    Minimax,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SceneFile {
    model: ModelName,
    #[serde(default)]
    description: String,
    seed: u64,
    steps: usize,
    params: serde_json::Value,
    /// Weight arrays from files (.npy or file.npz:name) instead of random ones.
    #[serde(default)]
    weights: WeightFiles,
    #[serde(default)]
    monitors: Monitors,
    #[serde(default)]
    outputs: Outputs,
}

/// Weight arrays named in a scene, each `file.npy` or `file.npz:name`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct WeightFiles {
    #[serde(default)]
    pub J: Option<String>,
    #[serde(default)]
    pub W_in: Option<String>,
    #[serde(default)]
    pub W_out: Option<String>,
    /// Gain moments sigma_j^2, [N]: the robustness cost.
    #[serde(default)]
    pub sigma2: Option<String>,
    /// Cost weights alpha_ij, [N, N], for the power cost.
    #[serde(default)]
    pub alpha: Option<String>,
}

impl WeightFiles {
    pub fn is_empty(&self) -> bool {
        self.J.is_none()
            && self.W_in.is_none()
            && self.W_out.is_none()
            && self.sigma2.is_none()
            && self.alpha.is_none()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// Write the recorded arrays as .npy.
    #[serde(default = "yes")]
    pub arrays: bool,
    /// Write PNG plots of the figure.
    #[serde(default = "yes")]
    pub plots: bool,
}

fn yes() -> bool {
    true
}

impl Default for Outputs {
    fn default() -> Self {
        Self {
            arrays: true,
            plots: true,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ModelParams {
    Rate(RateParams),
    Balancing(BalancingScene),
    Disco(DiscoScene),
    Spiking(SpikingScene),
    Minimax(MinimaxScene),
}

/// The experiments of paper 000's minimax networks, by the `experiment` tag of `params`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum MinimaxScene {
    /// Fig. 1: the generic network over a sweep of tau; `steps` per tau.
    Fig1(Fig1Params),
    /// Fig. 2a and 2b: reconstruction of constant inputs (`steps` of dt) and the integrator.
    Fig2(Fig2Params),
    /// Fig. 2c/2d: image patches with low-rank inhibition; `steps` E steps per N_I.
    Fig2Image(Fig2ImageParams),
    /// Fig. 3: the fixed-point attractor; `steps` of dt in all, the cue first.
    Fig3(Fig3Params),
    /// Fig. 4: the ring attractor over `steps` (two cues), and its travelling wave.
    Fig4Ring(RingParams),
    /// Fig. 4: the grid variant; `steps` of dt.
    Fig4Grid(GridParams),
}

/// The experiments of the spiking model, by the `experiment` tag of `params`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum SpikingScene {
    /// The CUBA benchmark; `steps` of dt.
    Cuba(CubaParams),
}

/// The experiments of paper 003's DisCo-SGD, by the `experiment` tag of `params`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum DiscoScene {
    /// Fig. 2d for any distribution: capacity measured against eq. 3; `steps` is the SGD step
    /// budget of each problem.
    Capacity(CapacityParams),
    /// Fig. 5a: students of a teacher drawn from a distribution, per paradigm; `steps` is the
    /// SGD step budget of each student.
    TeacherStudent(TeacherParams),
    /// Fig. 3: the trained distribution against the W2 geodesic; `steps` SGD steps.
    Geodesic(GeodesicParams),
}

/// The experiments of paper 001's balancing model, by the `experiment` tag of `params`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum BalancingScene {
    /// Fig. 3: two-neuron networks against the closed forms; `steps` flow iterations.
    TwoNeurons(TwoNeurons),
    /// Fig. 5: a perturbed ring relaxing; `steps` flow iterations.
    RingPerturbation(RingPerturbation),
    /// Fig. 4: networks trained on context-dependent integration, then balanced; `steps`
    /// training iterations.
    Cdi(CdiParams),
    /// A network from files (the scene's `weights`), balanced as `dale balance` does; `steps` is
    /// unused (the settings' max_iterations bounds the run).
    Network(BalanceSettings),
}

impl BalancingScene {
    fn validate(&self, at: &str) -> Result<(), DaleError> {
        match self {
            BalancingScene::TwoNeurons(p) => p.validate(at),
            BalancingScene::RingPerturbation(p) => p.validate(at),
            BalancingScene::Cdi(p) => p.validate(at),
            BalancingScene::Network(s) => s.validate(&format!("{at}.")),
        }
    }
}

/// A parsed and validated scene.
#[derive(Clone, Debug, Serialize)]
pub struct Scene {
    pub description: String,
    pub seed: u64,
    pub steps: usize,
    pub params: ModelParams,
    pub weights: WeightFiles,
    pub monitors: Monitors,
    pub outputs: Outputs,
}

fn path_of<E: std::fmt::Display>(prefix: &str, e: serde_path_to_error::Error<E>) -> DaleError {
    let inner = e.path().to_string();
    let path = match (prefix, inner.as_str()) {
        // A syntax error has no path ("?" in serde_path_to_error); the message gives the line.
        (_, "?") => "JSON syntax".to_string(),
        ("", p) => p.to_string(),
        (pre, ".") => pre.to_string(),
        (pre, p) => format!("{pre}.{p}"),
    };
    DaleError::scene(path, e.inner().to_string())
}

impl Scene {
    /// Parses and validates scene JSON.
    pub fn parse(text: &str) -> Result<Self, DaleError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: SceneFile = serde_path_to_error::deserialize(de).map_err(|e| path_of("", e))?;
        let params = match file.model {
            ModelName::Rate => {
                let p: RateParams = serde_path_to_error::deserialize(file.params)
                    .map_err(|e| path_of("params", e))?;
                p.validate("params")?;
                ModelParams::Rate(p)
            }
            ModelName::Balancing => {
                let p: BalancingScene = serde_path_to_error::deserialize(file.params)
                    .map_err(|e| path_of("params", e))?;
                p.validate("params")?;
                ModelParams::Balancing(p)
            }
            ModelName::Disco => {
                // The tag is taken off first: serde reads an internally tagged enum through a
                // buffer that loses the path of an error inside it.
                let mut params = file.params;
                let experiment = params.as_object_mut().and_then(|o| o.remove("experiment"));
                match experiment.as_ref().and_then(|v| v.as_str()) {
                    Some("capacity") => {
                        let c: CapacityParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        c.validate("params")?;
                        ModelParams::Disco(DiscoScene::Capacity(c))
                    }
                    Some("teacher_student") => {
                        let t: TeacherParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        t.validate("params")?;
                        ModelParams::Disco(DiscoScene::TeacherStudent(t))
                    }
                    Some("geodesic") => {
                        let g: GeodesicParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        g.validate("params")?;
                        ModelParams::Disco(DiscoScene::Geodesic(g))
                    }
                    _ => {
                        return Err(DaleError::scene(
                            "params.experiment",
                            format!(
                                "{}; allowed: \"capacity\", \"teacher_student\", \"geodesic\"",
                                experiment.map_or("missing".into(), |v| v.to_string())
                            ),
                        ))
                    }
                }
            }
            ModelName::Spiking => {
                let mut params = file.params;
                let experiment = params.as_object_mut().and_then(|o| o.remove("experiment"));
                match experiment.as_ref().and_then(|v| v.as_str()) {
                    Some("cuba") => {
                        let c: CubaParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        c.validate("params")?;
                        ModelParams::Spiking(SpikingScene::Cuba(c))
                    }
                    _ => {
                        return Err(DaleError::scene(
                            "params.experiment",
                            format!(
                                "{}; allowed: \"cuba\"",
                                experiment.map_or("missing".into(), |v| v.to_string())
                            ),
                        ))
                    }
                }
            }
            ModelName::Minimax => {
                let mut params = file.params;
                let experiment = params.as_object_mut().and_then(|o| o.remove("experiment"));
                match experiment.as_ref().and_then(|v| v.as_str()) {
                    Some("fig1") => {
                        let f: Fig1Params = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig1(f))
                    }
                    Some("fig2") => {
                        let f: Fig2Params = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig2(f))
                    }
                    Some("fig2_image") => {
                        let f: Fig2ImageParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig2Image(f))
                    }
                    Some("fig3") => {
                        let f: Fig3Params = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig3(f))
                    }
                    Some("fig4_ring") => {
                        let f: RingParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig4Ring(f))
                    }
                    Some("fig4_grid") => {
                        let f: GridParams = serde_path_to_error::deserialize(params)
                            .map_err(|e| path_of("params", e))?;
                        f.validate("params")?;
                        ModelParams::Minimax(MinimaxScene::Fig4Grid(f))
                    }
                    _ => {
                        return Err(DaleError::scene(
                            "params.experiment",
                            format!(
                                "{}; allowed: \"fig1\", \"fig2\", \"fig2_image\", \"fig3\", \"fig4_ring\", \"fig4_grid\"",
                                experiment.map_or("missing".into(), |v| v.to_string())
                            ),
                        ))
                    }
                }
            }
        };
        if file.steps == 0 {
            return Err(DaleError::scene(
                "steps",
                "steps = 0; allowed: an integer >= 1",
            ));
        }
        if file.steps > u32::MAX as usize {
            return Err(DaleError::scene(
                "steps",
                format!("steps = {}; allowed: at most {}", file.steps, u32::MAX),
            ));
        }
        for (name, mon) in [("x", &file.monitors.x), ("y", &file.monitors.y)] {
            if let Some(mon) = mon {
                if mon.every == 0 {
                    return Err(DaleError::scene(
                        format!("monitors.{name}.every"),
                        "every = 0; allowed: an integer >= 1",
                    ));
                }
                if mon.trials == Some(0) {
                    return Err(DaleError::scene(
                        format!("monitors.{name}.trials"),
                        "trials = 0; allowed: an integer >= 1",
                    ));
                }
            }
        }
        let w = &file.weights;
        match &params {
            ModelParams::Rate(_) if w.sigma2.is_some() || w.alpha.is_some() => {
                return Err(DaleError::scene("weights", "sigma2 and alpha are cost weights of the balancing model; the rate model takes J, W_in, W_out"));
            }
            ModelParams::Balancing(BalancingScene::Network(_)) if w.J.is_none() => {
                return Err(DaleError::scene("weights.J", "missing; the experiment \"network\" balances the J given here (.npy or file.npz:name)"));
            }
            ModelParams::Balancing(BalancingScene::Network(_)) => {}
            ModelParams::Balancing(_) | ModelParams::Disco(_) | ModelParams::Spiking(_)
                if !w.is_empty() =>
            {
                return Err(DaleError::scene(
                    "weights",
                    "allowed with the rate model and with the balancing experiment \"network\"",
                ));
            }
            _ => {}
        }
        Ok(Scene {
            description: file.description,
            seed: file.seed,
            steps: file.steps,
            weights: file.weights,
            params,
            monitors: file.monitors,
            outputs: file.outputs,
        })
    }

    pub fn read(path: &std::path::Path) -> Result<Self, DaleError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaleError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The same scene at a size that runs in seconds: every scene in scenes/ is smoke-tested.
    pub fn smoke(&mut self) {
        let steps = self.steps;
        self.steps = self.steps.min(100);
        match &mut self.params {
            ModelParams::Rate(p) => p.smoke(),
            ModelParams::Balancing(BalancingScene::RingPerturbation(p)) => p.smoke(),
            ModelParams::Balancing(BalancingScene::Cdi(p)) => p.smoke(),
            ModelParams::Balancing(BalancingScene::TwoNeurons(_) | BalancingScene::Network(_)) => {}
            ModelParams::Disco(scene) => {
                // A problem needs some hundreds of SGD steps to separate even at half its
                // capacity; the smoke runs few problems at few loads instead.
                self.steps = steps.min(1000);
                match scene {
                    DiscoScene::Capacity(p) => p.smoke(),
                    DiscoScene::TeacherStudent(p) => p.smoke(),
                    DiscoScene::Geodesic(p) => p.smoke(),
                }
            }
            // 2,000 steps: 200 ms, some spikes from every neuron whose rest lies above threshold.
            ModelParams::Spiking(SpikingScene::Cuba(p)) => {
                self.steps = steps.min(2000);
                p.smoke();
            }
            // 20 tau at dt = tau / 1000: the trends over tau show, in seconds.
            ModelParams::Minimax(MinimaxScene::Fig1(p)) => {
                self.steps = steps.min(20_000);
                p.smoke();
            }
            // 20 tau of each input at dt = tau / 1000; the integrator at dt = 1e-3.
            ModelParams::Minimax(MinimaxScene::Fig2(p)) => {
                self.steps = steps.min(20_000);
                p.smoke();
            }
            // 100 E steps (0.1 tau), each with up to 200 I substeps, at the smallest and largest N_I.
            ModelParams::Minimax(MinimaxScene::Fig2Image(p)) => {
                self.steps = steps.min(100);
                p.smoke();
            }
            // The whole run at a step four times coarser (dt = 4e-3 at the scene's: spikes at
            // 80 Hz stay below one per step).
            ModelParams::Minimax(MinimaxScene::Fig3(p)) => {
                p.dt *= 4.0;
                self.steps = steps / 4;
            }
            // Half the run (cues of 5 time units) at twice the step.
            ModelParams::Minimax(MinimaxScene::Fig4Ring(p)) => {
                p.dt *= 2.0;
                self.steps = steps / 4;
            }
            // A 21 x 21 torus over 7.5 time units at dt = 5e-3 (spikes at ~50 Hz stay below one
            // per step): the pattern holds 60% of the spatial power by then.
            ModelParams::Minimax(MinimaxScene::Fig4Grid(p)) => {
                p.dt = p.dt.max(5e-3);
                self.steps = steps.min(1500);
                p.smoke();
            }
        }
    }

    /// The experiment this scene runs, with every array it names read and checked.
    pub fn experiment(&self) -> Result<Box<dyn Experiment>, DaleError> {
        let (seed, steps) = (self.seed, self.steps);
        Ok(match &self.params {
            ModelParams::Rate(p) => Box::new(RateRun::new(
                p.clone(),
                &self.weights,
                seed,
                steps,
                self.monitors.clone(),
            )?),
            ModelParams::Balancing(BalancingScene::TwoNeurons(p)) => Box::new(Fig3 {
                params: p.clone(),
                steps,
            }),
            ModelParams::Balancing(BalancingScene::RingPerturbation(p)) => {
                Box::new(Fig5 { params: *p, steps })
            }
            ModelParams::Balancing(BalancingScene::Cdi(p)) => Box::new(Fig4 {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Balancing(BalancingScene::Network(s)) => Box::new(BalanceNetwork::new(
                inputs_from_files(&self.weights)?,
                s.clone(),
            )?),
            ModelParams::Disco(DiscoScene::Capacity(p)) => {
                Box::new(Capacity::new(p.clone(), steps, seed)?)
            }
            ModelParams::Disco(DiscoScene::TeacherStudent(p)) => {
                Box::new(TeacherStudent::new(p.clone(), steps, seed)?)
            }
            ModelParams::Disco(DiscoScene::Geodesic(p)) => {
                Box::new(Geodesic::new(p.clone(), steps, seed)?)
            }
            ModelParams::Spiking(SpikingScene::Cuba(p)) => Box::new(Cuba {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig1(p)) => Box::new(MinimaxFig1 {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig2(p)) => Box::new(MinimaxFig2 {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig2Image(p)) => Box::new(MinimaxFig2Image {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig3(p)) => Box::new(MinimaxFig3 {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig4Ring(p)) => Box::new(MinimaxRing {
                params: p.clone(),
                steps,
                seed,
            }),
            ModelParams::Minimax(MinimaxScene::Fig4Grid(p)) => Box::new(MinimaxGrid {
                params: p.clone(),
                steps,
                seed,
            }),
        })
    }
}
