//! dale: the models of five computational-neuroscience papers on any GPU (wgpu compute shaders)
//! and on a fast multithreaded CPU backend. Models are written once against `backend::Backend`;
//! scenes (JSON) reproduce the papers' experiments; see DESIGN.md in the shared notes.

pub mod analysis;
pub mod backend;
pub mod error;
pub mod models;
pub mod scene;

pub use backend::{Backend, Buf};
pub use error::DaleError;
