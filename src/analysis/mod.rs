//! Figures computed from results, in f64 on the host: the analyses the papers apply to a run.

pub mod balance;
pub mod disco;
pub mod minimax;
pub mod minimax_designs;
pub mod spikes;
