//! Errors raised by the engine. Every variant renders as one line that names the input and what was expected.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// A configuration value is invalid: `field` names the key, `message` says what was expected.
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// Buffers or data do not have the shape the model expects.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    /// Training produced a non-finite loss or gradient; the parameters are those before that step.
    #[error("training diverged at step {step} (learning rate {lr}): loss is {loss}; try a smaller --lr")]
    Diverged { step: u64, lr: f32, loss: f64 },
    /// Something would need more memory (or other resources) than the limit allows; the message names it.
    #[error("{0}")]
    Limit(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::Config { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
