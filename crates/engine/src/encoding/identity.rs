//! `identity`: passes the mapped input through unchanged.

use super::{BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {}

impl EncodingSpec for IdentitySpec {
    const FORM: Form = Form::new("identity", "identity", &["identity"], "the raw coordinates");

    fn from_args(args: &[&str]) -> Result<Self> {
        if !args.is_empty() {
            return Err(EngineError::config("encoding identity", "takes no arguments"));
        }
        Ok(IdentitySpec {})
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        Ok(Box::new(Identity { dims: ctx.input_dims }))
    }
}

#[derive(Debug)]
pub struct Identity {
    dims: usize,
}

impl Encoding for Identity {
    fn describe(&self) -> String {
        "identity".into()
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.dims
    }
    fn flops_per_sample(&self) -> u64 {
        0
    }
    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        output[..input.len()].copy_from_slice(input);
    }
    fn backward(
        &self,
        _params: &[f32],
        _input: &[f32],
        grad_output: &[f32],
        _grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        if let Some(g) = grad_input {
            g.copy_from_slice(&grad_output[..g.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn identity_gradients_match_finite_differences() {
        let enc = IdentitySpec {}.build(&BuildContext { input_dims: 3, seed: 0, max_features: 1 << 20 }).unwrap();
        gradcheck::check_encoding(enc.as_ref(), 5, 1).unwrap();
    }
}
