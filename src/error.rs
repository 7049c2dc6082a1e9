//! Errors of the library. Each says what was wrong, where (JSON path, field, step, file) and what
//! is allowed; the CLI adds context and maps them to exit codes.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DaleError {
    /// A scene that cannot be read, or a value outside what the model allows.
    #[error("{} `{path}`: {message}", if path.starts_with("--") { "option" } else { "scene error at" })]
    Scene { path: String, message: String },

    /// A size that does not fit the chosen backend, found before anything is allocated.
    #[error("`{path}` = {value} does not fit {backend}: {why}; the largest value that fits is {largest}")]
    TooLarge {
        path: String,
        value: usize,
        largest: usize,
        backend: String,
        why: String,
    },

    /// The state left the finite numbers: the run stops and keeps what it wrote.
    #[error("the run diverged at step {step}: {quantity} is not finite (largest |value| {value}); outputs up to step {kept} were kept")]
    Diverged {
        step: usize,
        quantity: String,
        value: f32,
        kept: usize,
    },

    /// Balancing asked of a network whose cost graph has no finite balanced point.
    #[error("network {network} has no finite balanced point (001 Prop. B.1): {why}; the direct solver needs one, the flow (method \"flow\") runs anyway")]
    NoBalance { network: usize, why: String },

    #[error("no GPU adapter for backend `{requested}`: {why}")]
    NoAdapter { requested: String, why: String },

    /// A wgpu validation or out-of-memory error, named by the op or buffer that caused it.
    #[error("GPU error in {what}: {message}")]
    Gpu { what: String, message: String },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A weight array given by the user that cannot be used.
    #[error("input {file}, array `{array}`: {message}")]
    Input {
        file: PathBuf,
        array: String,
        message: String,
    },

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DaleError {
    pub fn scene(path: impl Into<String>, message: impl Into<String>) -> Self {
        DaleError::Scene {
            path: path.into(),
            message: message.into(),
        }
    }
}
