//! The papers' models, one file each, written against `Backend` only.

pub mod balancing;
pub mod bptt;
pub mod disco;
pub mod minimax;
pub mod rate;
pub mod spiking;
