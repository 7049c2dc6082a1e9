//! The papers' models, one file each, written against `Backend` only.

pub mod rate;
pub mod balancing;
pub mod bptt;
