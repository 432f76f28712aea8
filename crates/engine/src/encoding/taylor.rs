//! `taylor`: polynomial features. Per input dimension `x` the block `[x, x^2, ..., x^N]`, blocks in dimension order,
//! so the width is `dims * N`. Inputs live in (-1, 1) so that high powers shrink instead of overflowing.
//!
//! CLI: `taylor:N`; TOML: `type = "taylor"`, `order = N`.

use super::{parse_count_arg, BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use crate::rows;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaylorSpec {
    /// Highest power `N`.
    pub order: usize,
}

impl TaylorSpec {
    fn validate(&self) -> Result<()> {
        if self.order == 0 {
            return Err(EngineError::config("encoding taylor", "order must be at least 1, got 0"));
        }
        Ok(())
    }
}

impl EncodingSpec for TaylorSpec {
    const FORM: Form = Form::new("taylor", "taylor:N", &["taylor:8"], "powers up to N");

    fn from_args(args: &[&str]) -> Result<Self> {
        let spec = TaylorSpec { order: parse_count_arg("taylor", "order", "N", args)? };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        self.validate()?;
        Ok(Box::new(Taylor { dims: ctx.input_dims, order: self.order }))
    }
}

#[derive(Debug)]
pub struct Taylor {
    dims: usize,
    order: usize,
}

impl Encoding for Taylor {
    fn describe(&self) -> String {
        format!("taylor({})", self.order)
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.dims * self.order
    }
    fn flops_per_sample(&self) -> u64 {
        (self.dims * self.order) as u64
    }

    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        let (d, n) = (self.dims, self.order);
        let batch = input.len() / d;
        let width = d * n;
        output[..batch * width]
            .par_chunks_mut(rows::ROWS_PER_TASK * width)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * d))
            .for_each(|(out, inp)| {
                for (o, &x) in out.chunks_exact_mut(n).zip(inp) {
                    let mut p = 1.0f32;
                    for v in o.iter_mut() {
                        p *= x;
                        *v = p;
                    }
                }
            });
    }

    fn backward(
        &self,
        _params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        grad_params.fill(0.0);
        let Some(gx) = grad_input else { return };
        let (d, n) = (self.dims, self.order);
        gx.par_chunks_mut(rows::ROWS_PER_TASK * d)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * d))
            .zip(grad_output.par_chunks(rows::ROWS_PER_TASK * d * n))
            .for_each(|((gx, inp), go)| {
                for ((g, &x), go) in gx.iter_mut().zip(inp).zip(go.chunks_exact(n)) {
                    // d(x^k)/dx = k x^(k-1); `p` runs through x^(k-1).
                    let mut p = 1.0f32;
                    let mut acc = 0.0f32;
                    for (k, &gk) in go.iter().enumerate() {
                        acc += gk * (k + 1) as f32 * p;
                        p *= x;
                    }
                    *g = acc;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck;

    fn ctx(dims: usize) -> BuildContext {
        BuildContext { input_dims: dims, seed: 7, max_features: 1 << 20 }
    }

    #[test]
    fn taylor_gradients_match_finite_differences() {
        let enc = TaylorSpec { order: 6 }.build(&ctx(3)).unwrap();
        gradcheck::check_encoding(enc.as_ref(), 9, 3).unwrap();
    }

    #[test]
    fn taylor_width_is_dims_times_order() {
        assert_eq!(TaylorSpec { order: 5 }.build(&ctx(3)).unwrap().output_dims(), 15);
        assert_eq!(TaylorSpec { order: 8 }.build(&ctx(784)).unwrap().output_dims(), 6272);
    }

    #[test]
    fn taylor_features_are_powers_in_dimension_order() {
        let enc = TaylorSpec { order: 3 }.build(&ctx(2)).unwrap();
        let mut out = vec![0.0; 12];
        enc.forward(&[], &[0.5, -2.0, 0.1, 3.0], &mut out);
        assert_eq!(out, vec![0.5, 0.25, 0.125, -2.0, 4.0, -8.0, 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1, 3.0, 9.0, 27.0]);
    }

    #[test]
    fn taylor_refuses_order_zero_and_bad_args() {
        let e = EncodingConfig::parse("taylor:0").unwrap_err().to_string();
        assert!(e.contains("order must be at least 1"), "{e}");
        assert!(TaylorSpec { order: 0 }.build(&ctx(2)).is_err());
        let e = EncodingConfig::parse("taylor:abc").unwrap_err().to_string();
        assert!(e.contains("'abc'"), "{e}");
        assert!(EncodingConfig::parse("taylor").is_err());
        assert!(EncodingConfig::parse("taylor:3:4").is_err());
    }

    #[test]
    fn taylor_parses_cli_and_round_trips_toml() {
        let c = EncodingConfig::parse("taylor:8").unwrap();
        assert_eq!(c, EncodingConfig::Taylor(TaylorSpec { order: 8 }));
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<EncodingConfig>(&text).unwrap(), c);
        let parsed: EncodingConfig = toml::from_str("type = \"taylor\"\norder = 8").unwrap();
        assert_eq!(parsed, c);
        assert!(toml::from_str::<EncodingConfig>("type = \"taylor\"\norder = 8\nbogus = 1").is_err());
    }
}
