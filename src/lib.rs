//! dale: the models of five computational-neuroscience papers on any GPU (wgpu compute shaders)
//! and on a fast multithreaded CPU backend. Models are written once against the op families of
//! `backend`; each reproduced figure is an experiment; scenes (JSON) name one and its parameters.

pub mod analysis;
pub mod backend;
pub mod commands;
pub mod error;
pub mod experiments;
pub mod host;
pub mod models;
pub mod scene;

pub use backend::{Backend, Buf, BufferOps};
pub use error::DaleError;
