//! approxlab's training engine: models composed of an input map, an encoding, a network and an output head,
//! trained with a loss, an optimizer and a learning-rate schedule, on the CPU, with no allocation per step.

pub mod encoding;
pub mod error;
pub mod gradcheck;
pub mod limits;
pub mod linalg;
pub mod onednn;
pub mod openblas;
pub mod precision;
pub mod rng;

pub use error::{EngineError, Result};
pub mod activation;
pub mod head;
pub mod loss;
pub mod memory;
pub mod model;
pub mod network;
pub mod optimizer;
pub mod parts;
pub mod rows;
pub mod schedule;
mod simd;
pub mod trainer;

pub use model::{Model, ModelConfig, NeuronLayer};
pub use trainer::{StepStats, TrainConfig, Trainer};
pub mod checkpoint;
