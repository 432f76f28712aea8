//! `positional`: the NeRF positional encoding (Mildenhall et al. 2020).
//!
//! Per input dimension `x` the block `[x, sin(2^0 pi x), cos(2^0 pi x), sin(2^1 pi x), cos(2^1 pi x), ...,
//! sin(2^(L-1) pi x), cos(2^(L-1) pi x)]` (2L+1 features; the sine and cosine of one level are adjacent, as in
//! NeRF's `embed_fns` loop), blocks in dimension order, so the width is `dims * (2L + 1)`. Octave-spaced frequencies
//! reach high detail with few features, unlike `fourier`'s linear spacing.
//!
//! CLI: `positional:L`; TOML: `type = "positional"`, `levels = L`. Inputs are mapped to (-1, 1).

use super::{parse_count_arg, BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use crate::rows;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalSpec {
    /// Number of octaves `L`.
    pub levels: usize,
}

const FIELD: &str = "encoding positional";
/// Beyond this, `2^l pi x` exceeds f32's resolution of the input and the features are noise.
const MAX_LEVELS: usize = 24;

impl PositionalSpec {
    fn validate(&self) -> Result<()> {
        if self.levels == 0 || self.levels > MAX_LEVELS {
            return Err(EngineError::config(FIELD, format!("levels must be in 1..={MAX_LEVELS}, got {}", self.levels)));
        }
        Ok(())
    }
}

impl EncodingSpec for PositionalSpec {
    const FORM: Form = Form::new("positional", "positional:L", &["positional:8"], "NeRF");

    fn from_args(args: &[&str]) -> Result<Self> {
        let spec = PositionalSpec { levels: parse_count_arg("positional", "levels", "L", args)? };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        self.validate()?;
        Ok(Box::new(Positional { dims: ctx.input_dims, levels: self.levels }))
    }
}

#[derive(Debug)]
pub struct Positional {
    dims: usize,
    levels: usize,
}

impl Encoding for Positional {
    fn describe(&self) -> String {
        format!("positional({})", self.levels)
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.dims * (2 * self.levels + 1)
    }
    fn flops_per_sample(&self) -> u64 {
        (self.dims * self.levels * 20) as u64
    }

    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        let (dims, block) = (self.dims, 2 * self.levels + 1);
        let batch = input.len() / dims;
        let width = dims * block;
        output[..batch * width]
            .par_chunks_mut(rows::ROWS_PER_TASK * width)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .for_each(|(out, inp)| {
                for (o, &x) in out.chunks_exact_mut(block).zip(inp) {
                    o[0] = x;
                    // An exact sin_cos per level: L is small, and double-angle recurrences would double the error
                    // at every octave.
                    let mut w = PI;
                    for sc in o[1..].chunks_exact_mut(2) {
                        let (s, c) = (w * x as f64).sin_cos();
                        sc[0] = s as f32;
                        sc[1] = c as f32;
                        w *= 2.0;
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
        let (dims, block) = (self.dims, 2 * self.levels + 1);
        gx.par_chunks_mut(rows::ROWS_PER_TASK * dims)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .zip(grad_output.par_chunks(rows::ROWS_PER_TASK * dims * block))
            .for_each(|((gx, inp), go)| {
                for ((g, &x), go) in gx.iter_mut().zip(inp).zip(go.chunks_exact(block)) {
                    let mut acc = go[0] as f64;
                    let mut w = PI;
                    for gsc in go[1..].chunks_exact(2) {
                        let (s, c) = (w * x as f64).sin_cos();
                        acc += w * (gsc[0] as f64 * c - gsc[1] as f64 * s);
                        w *= 2.0;
                    }
                    *g = acc as f32;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck::{self, Tolerance};

    fn build(dims: usize, levels: usize) -> Box<dyn Encoding> {
        PositionalSpec { levels }.build(&BuildContext { input_dims: dims, seed: 0, max_features: 1 << 20 }).unwrap()
    }

    #[test]
    fn positional_gradients_match_finite_differences() {
        gradcheck::check_encoding(build(2, 3).as_ref(), 6, 9).unwrap();
        // 2^9 pi ~ 1600 rad per unit needs a small step.
        let enc = build(3, 10);
        let input: Vec<f32> = (0..12).map(|i| (i as f32 * 0.61).cos() * 0.7).collect();
        gradcheck::check_encoding_at(enc.as_ref(), &[], &input, &Tolerance { eps: 2e-5, rel: 3e-2, abs: 5e-2 })
            .unwrap();
    }

    #[test]
    fn positional_width_formula() {
        assert_eq!(build(2, 10).output_dims(), 42);
        assert_eq!(build(3, 6).output_dims(), 39);
        assert_eq!(build(1, 1).output_dims(), 3);
    }

    #[test]
    fn positional_features_by_hand() {
        let enc = build(2, 3);
        let (x, y) = (0.25f32, -0.4f32);
        let mut out = vec![f32::NAN; 14];
        enc.forward(&[], &[x, y], &mut out);
        let mut want = Vec::new();
        for v in [x as f64, y as f64] {
            want.push(v);
            for l in 0..3 {
                let a = (1 << l) as f64 * PI * v;
                want.extend([a.sin(), a.cos()]);
            }
        }
        for (i, (o, w)) in out.iter().zip(&want).enumerate() {
            assert!((*o as f64 - w).abs() < 1e-6, "feature {i}: {o} vs {w}");
        }
        // sin(pi/4) = cos(pi/4), sin(pi/2) = 1, cos(pi) = -1 at x = 1/4.
        assert!((out[1] - out[2]).abs() < 1e-6 && (out[3] - 1.0).abs() < 1e-6 && (out[6] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn positional_refuses_bad_levels() {
        let e = EncodingConfig::parse("positional:0").unwrap_err().to_string();
        assert!(e.contains("levels must be in 1..=24, got 0"), "{e}");
        assert!(EncodingConfig::parse("positional:99").is_err());
        assert!(EncodingConfig::parse("positional:ten").unwrap_err().to_string().contains("'ten'"));
        assert!(PositionalSpec { levels: 0 }.build(&BuildContext { input_dims: 2, seed: 0, max_features: 9 }).is_err());
    }

    #[test]
    fn positional_parses_cli_and_round_trips_toml() {
        let c = EncodingConfig::parse("positional:10").unwrap();
        assert_eq!(c, EncodingConfig::Positional(PositionalSpec { levels: 10 }));
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<EncodingConfig>(&text).unwrap(), c);
        assert!(toml::from_str::<EncodingConfig>("type = \"positional\"\norder = 10").is_err());
    }
}
