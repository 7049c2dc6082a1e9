//! Scenes: JSON files that name a model, its parameters (in the paper's symbols), the seed, the
//! number of steps, what to monitor and what to write. Unknown fields and out-of-range values are
//! errors naming the JSON path, the value and what is allowed.

pub mod arrays;
pub mod balance_weights;
pub mod balancing;
pub mod cdi;
pub mod output;
pub mod plot;
pub mod runner;

use serde::{Deserialize, Serialize};

use crate::error::DaleError;
use crate::models::rate::{Monitor, RateParams};

/// Models a scene may name.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    Rate,
    Balancing,
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
    weights: balance_weights::WeightFiles,
    #[serde(default)]
    monitors: MonitorsSpec,
    #[serde(default)]
    outputs: Outputs,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorsSpec {
    /// The state x, every `every` steps.
    #[serde(default)]
    pub x: Option<Monitor>,
    /// The readout y = W_out x, every `every` steps.
    #[serde(default)]
    pub y: Option<Monitor>,
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
    Balancing(balancing::BalancingScene),
}

/// A parsed and validated scene.
#[derive(Clone, Debug, Serialize)]
pub struct Scene {
    pub description: String,
    pub seed: u64,
    pub steps: usize,
    pub params: ModelParams,
    pub weights: balance_weights::WeightFiles,
    pub monitors: MonitorsSpec,
    pub outputs: Outputs,
}

fn path_of<E: std::fmt::Display>(prefix: &str, e: serde_path_to_error::Error<E>) -> DaleError {
    let inner = e.path().to_string();
    let path = match (prefix, inner.as_str()) {
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
                let p: balancing::BalancingScene = serde_path_to_error::deserialize(file.params)
                    .map_err(|e| path_of("params", e))?;
                p.validate("params")?;
                ModelParams::Balancing(p)
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
            ModelParams::Balancing(balancing::BalancingScene::Network(s)) => {
                s.validate("params.")?;
                if w.J.is_none() {
                    return Err(DaleError::scene("weights.J", "missing; the experiment \"network\" balances the J given here (.npy or file.npz:name)"));
                }
            }
            ModelParams::Balancing(_) if !w.is_empty() => {
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
        self.steps = self.steps.min(100);
        match &mut self.params {
            ModelParams::Rate(p) => p.smoke(),
            ModelParams::Balancing(p) => p.smoke(),
        }
    }
}
