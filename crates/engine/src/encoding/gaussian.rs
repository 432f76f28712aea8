//! `gaussian`: random Fourier features (Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency
//! Functions in Low Dimensional Domains").
//!
//! Output `[sin(2 pi B x) (m values), cos(2 pi B x) (m values)]`, width `2m`, with `B` an `m x dims` matrix drawn
//! once from `N(0, sigma^2)`. `B` is not trained and not stored in the parameter vector: it is redrawn from
//! `rng::derived(seed, "gaussian")` at build time, so the same model seed always gives the same features.
//! `sigma` sets the bandwidth: too small blurs, too large gives noisy overfitting.
//!
//! CLI: `gaussian:M[:SIGMA]` (SIGMA defaults to 10); TOML: `type = "gaussian"`, `features = M`, `sigma = S`.

use super::{parse_arg, BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use crate::rng;
use crate::rows;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f32::consts::TAU;

fn default_sigma() -> f32 {
    10.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianSpec {
    /// Number of random frequencies `m`; the width is `2m`.
    pub features: usize,
    /// Standard deviation of the frequencies' entries.
    #[serde(default = "default_sigma")]
    pub sigma: f32,
}

const FIELD: &str = "encoding gaussian";

impl GaussianSpec {
    fn validate(&self) -> Result<()> {
        if self.features == 0 {
            return Err(EngineError::config(FIELD, "features must be at least 1, got 0"));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(EngineError::config(FIELD, format!("sigma must be positive and finite, got {}", self.sigma)));
        }
        Ok(())
    }
}

impl EncodingSpec for GaussianSpec {
    const FORM: Form = Form::new("gaussian", "gaussian:M[:SIGMA]", &["gaussian:128:10"], "M random Fourier features");

    fn from_args(args: &[&str]) -> Result<Self> {
        if args.len() > 2 {
            return Err(EngineError::config(
                FIELD,
                format!("takes gaussian:M or gaussian:M:SIGMA, got {} arguments", args.len()),
            ));
        }
        let spec = GaussianSpec {
            features: parse_arg("gaussian", "features", args, 0, None)?,
            sigma: parse_arg("gaussian", "sigma", args, 1, Some(default_sigma()))?,
        };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        Ok(Box::new(Gaussian::new(self, ctx)?))
    }
}

#[derive(Debug)]
pub struct Gaussian {
    dims: usize,
    m: usize,
    sigma: f32,
    /// `2 pi B`, row-major `[m, dims]`.
    b: Vec<f32>,
}

impl Gaussian {
    pub fn new(spec: &GaussianSpec, ctx: &BuildContext) -> Result<Self> {
        spec.validate()?;
        // Checked here, before the frequencies are drawn, as well as by the model for every encoding.
        if spec.features.saturating_mul(2) > ctx.max_features {
            return Err(EngineError::config(
                FIELD,
                format!(
                    "{} frequencies give {} features, more than max_features {} (set model.max_features to allow more)",
                    spec.features,
                    spec.features.saturating_mul(2),
                    ctx.max_features
                ),
            ));
        }
        let entries = spec.features.saturating_mul(ctx.input_dims);
        crate::limits::check_memory(
            &format!("encoding gaussian:{} on {} inputs ({entries} frequencies)", spec.features, ctx.input_dims),
            entries as f64 * 4.0,
        )?;
        let mut rng = rng::derived(ctx.seed, "gaussian");
        let normal = Normal::new(0.0f32, spec.sigma).map_err(|e| EngineError::config(FIELD, e.to_string()))?;
        // Pre-scaled by 2 pi so the hot loops do one multiply-add per entry.
        let b: Vec<f32> = (0..spec.features * ctx.input_dims).map(|_| TAU * normal.sample(&mut rng)).collect();
        Ok(Gaussian { dims: ctx.input_dims, m: spec.features, sigma: spec.sigma, b })
    }

    /// The frequency matrix `B` (row-major `[m, dims]`), for inspection.
    pub fn frequencies(&self) -> Vec<f32> {
        self.b.iter().map(|v| v / TAU).collect()
    }
}

impl Encoding for Gaussian {
    fn describe(&self) -> String {
        format!("gaussian({}, sigma {})", self.m, self.sigma)
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        2 * self.m
    }
    fn flops_per_sample(&self) -> u64 {
        (self.m * (2 * self.dims + 20)) as u64
    }

    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        let (dims, m) = (self.dims, self.m);
        let batch = input.len() / dims;
        output[..batch * 2 * m]
            .par_chunks_mut(rows::ROWS_PER_TASK * 2 * m)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .for_each(|(out, inp)| {
                for (o, x) in out.chunks_exact_mut(2 * m).zip(inp.chunks_exact(dims)) {
                    let (sins, coss) = o.split_at_mut(m);
                    for ((s, c), bi) in sins.iter_mut().zip(coss.iter_mut()).zip(self.b.chunks_exact(dims)) {
                        let theta: f32 = bi.iter().zip(x).map(|(b, x)| b * x).sum();
                        (*s, *c) = theta.sin_cos();
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
        let (dims, m) = (self.dims, self.m);
        gx.par_chunks_mut(rows::ROWS_PER_TASK * dims)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .zip(grad_output.par_chunks(rows::ROWS_PER_TASK * 2 * m))
            .for_each(|((gx, inp), go)| {
                for ((g, x), go) in gx.chunks_exact_mut(dims).zip(inp.chunks_exact(dims)).zip(go.chunks_exact(2 * m)) {
                    g.fill(0.0);
                    let (gs, gc) = go.split_at(m);
                    for ((gs, gc), bi) in gs.iter().zip(gc).zip(self.b.chunks_exact(dims)) {
                        let theta: f32 = bi.iter().zip(x).map(|(b, x)| b * x).sum();
                        let (s, c) = theta.sin_cos();
                        // d theta / d x_j = (2 pi B)_ij, already in `bi`.
                        let a = gs * c - gc * s;
                        for (g, b) in g.iter_mut().zip(bi) {
                            *g += a * b;
                        }
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck::{self, Tolerance};

    fn build(m: usize, sigma: f32, dims: usize, seed: u64) -> Box<dyn Encoding> {
        GaussianSpec { features: m, sigma }
            .build(&BuildContext { input_dims: dims, seed, max_features: 1 << 20 })
            .unwrap()
    }

    #[test]
    fn gaussian_gradients_match_finite_differences() {
        // The default step of 1e-2 resolves frequencies up to ~2 pi * 0.3 * 3 sigma to well within tolerance.
        gradcheck::check_encoding(build(16, 0.3, 2, 3).as_ref(), 7, 8).unwrap();
        // High frequencies need a smaller step for central differences to resolve them.
        let enc = build(32, 10.0, 3, 4);
        let input: Vec<f32> = (0..15).map(|i| (i as f32 * 0.37).sin() * 0.8).collect();
        gradcheck::check_encoding_at(enc.as_ref(), &[], &input, &Tolerance { eps: 1e-4, rel: 2e-2, abs: 2e-2 })
            .unwrap();
    }

    #[test]
    fn gaussian_width_is_twice_features() {
        assert_eq!(build(256, 10.0, 2, 0).output_dims(), 512);
        assert_eq!(build(3, 1.0, 784, 0).output_dims(), 6);
    }

    #[test]
    fn gaussian_is_sines_then_cosines_of_2pi_bx() {
        let spec = GaussianSpec { features: 3, sigma: 2.0 };
        let ctx = BuildContext { input_dims: 2, seed: 5, max_features: 1 << 20 };
        let enc = spec.build(&ctx).unwrap();
        let mut rng = rng::derived(5, "gaussian");
        let normal = Normal::new(0.0f32, 2.0).unwrap();
        let b: Vec<f64> = (0..6).map(|_| normal.sample(&mut rng) as f64).collect();
        let x = [0.3f32, -0.6];
        let mut out = vec![f32::NAN; 6];
        enc.forward(&[], &x, &mut out);
        for i in 0..3 {
            let theta = std::f64::consts::TAU * (b[2 * i] * x[0] as f64 + b[2 * i + 1] * x[1] as f64);
            assert!((out[i] as f64 - theta.sin()).abs() < 1e-4, "sin {i}");
            assert!((out[3 + i] as f64 - theta.cos()).abs() < 1e-4, "cos {i}");
        }
    }

    #[test]
    fn gaussian_is_deterministic_per_seed() {
        let x: Vec<f32> = (0..8).map(|i| i as f32 * 0.1 - 0.4).collect();
        let run = |seed| {
            let enc = build(8, 3.0, 2, seed);
            let mut out = vec![0.0f32; 4 * 16];
            enc.forward(&[], &x, &mut out);
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn gaussian_frequencies_have_the_requested_spread() {
        let ctx = BuildContext { input_dims: 2, seed: 9, max_features: 1 << 20 };
        let b = Gaussian::new(&GaussianSpec { features: 2048, sigma: 3.0 }, &ctx).unwrap().frequencies();
        assert_eq!(b.len(), 4096);
        let mean = b.iter().map(|v| *v as f64).sum::<f64>() / b.len() as f64;
        let std = (b.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / b.len() as f64).sqrt();
        assert!(mean.abs() < 0.2 && (std - 3.0).abs() < 0.2, "mean {mean}, std {std}");
    }

    #[test]
    fn gaussian_refuses_bad_config() {
        let e = EncodingConfig::parse("gaussian:0:1").unwrap_err().to_string();
        assert!(e.contains("features must be at least 1, got 0"), "{e}");
        assert!(EncodingConfig::parse("gaussian:16:-1").unwrap_err().to_string().contains("sigma"));
        assert!(EncodingConfig::parse("gaussian:16:abc").unwrap_err().to_string().contains("'abc'"));
        assert!(EncodingConfig::parse("gaussian").is_err());
        assert!(EncodingConfig::parse("gaussian:1:2:3").is_err());
        let ctx = BuildContext { input_dims: 2, seed: 0, max_features: 10 };
        assert!(GaussianSpec { features: 4, sigma: f32::NAN }.build(&ctx).is_err());
    }

    #[test]
    fn gaussian_parses_cli_and_round_trips_toml() {
        let c = EncodingConfig::parse("gaussian:256:12.5").unwrap();
        assert_eq!(c, EncodingConfig::Gaussian(GaussianSpec { features: 256, sigma: 12.5 }));
        assert_eq!(
            EncodingConfig::parse("gaussian:64").unwrap(),
            EncodingConfig::Gaussian(GaussianSpec { features: 64, sigma: 10.0 })
        );
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<EncodingConfig>(&text).unwrap(), c);
        let parsed: EncodingConfig = toml::from_str("type = \"gaussian\"\nfeatures = 64").unwrap();
        assert_eq!(parsed, EncodingConfig::Gaussian(GaussianSpec { features: 64, sigma: 10.0 }));
        assert!(toml::from_str::<EncodingConfig>("type = \"gaussian\"\nfeatures = 64\norder = 3").is_err());
    }
}
