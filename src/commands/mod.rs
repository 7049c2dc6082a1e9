//! The commands of `dale` beside `run`: each reads its inputs, runs, and writes through the
//! scene runner's writer.

pub mod balance;
