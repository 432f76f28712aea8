//! `fourier`: per-dimension Fourier features, the encoding of the video's PyTorch code.
//!
//! Per input dimension `x` the block `[sin(1x), ..., sin(Nx), cos(1x), ..., cos(Nx), x]` (2N+1 features), blocks in
//! dimension order, so the width is `dims * (2N + 1)`: 258 for 2 inputs at order 64, 13,328 for MNIST's 784 at
//! order 8. Inputs are mapped to (-PI, PI) so that frequency 1 spans the domain once.
//!
//! CLI: `fourier:N`; TOML: `type = "fourier"`, `order = N`.
//!
//! This runs on every training step for every sample, so it avoids one `sin_cos` per feature: `sin(kx), cos(kx)`
//! follow from `sin((k-1)x), cos((k-1)x)` by angle addition. The recurrence runs in f64, where its error after 256
//! steps (~1e-13) is far below f32 rounding, so it needs no re-anchoring. A plain recurrence is one long dependency
//! chain, so instead `LANES` consecutive frequencies are carried together and rotated by `LANES * x` at once: the
//! chain is `N / LANES` long, the lanes vectorise, and the stores are contiguous.

use super::{parse_count_arg, BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use crate::rows;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FourierSpec {
    /// Highest frequency `N`.
    pub order: usize,
}

impl FourierSpec {
    fn validate(&self) -> Result<()> {
        if self.order == 0 {
            return Err(EngineError::config("encoding fourier", "order must be at least 1, got 0"));
        }
        Ok(())
    }
}

impl EncodingSpec for FourierSpec {
    const FORM: Form = Form::new(
        "fourier",
        "fourier:N",
        &["fourier:8", "fourier:16", "fourier:32"],
        "per dimension: sin kx, cos kx for k <= N, and x",
    );

    fn from_args(args: &[&str]) -> Result<Self> {
        let spec = FourierSpec { order: parse_count_arg("fourier", "order", "N", args)? };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        self.validate()?;
        Ok(Box::new(Fourier { dims: ctx.input_dims, order: self.order }))
    }

    fn default_input_range(&self) -> (f32, f32) {
        (-std::f32::consts::PI, std::f32::consts::PI)
    }
}

#[derive(Debug)]
pub struct Fourier {
    dims: usize,
    order: usize,
}

/// Frequencies advanced together (see the module doc): 8 f64 lanes fill AVX-512 or two AVX2 registers.
const LANES: usize = 8;

impl Fourier {
    fn width(&self) -> usize {
        self.dims * (2 * self.order + 1)
    }
}

/// `(sin kx, cos kx)` for `k = 1..=LANES`, and `(sin LANES*x, cos LANES*x)`, the rotation that advances every lane
/// by `LANES` frequencies.
#[inline]
fn first_block(x: f64) -> ([f64; LANES], [f64; LANES], f64, f64) {
    let (s1, c1) = x.sin_cos();
    let mut s = [s1; LANES];
    let mut c = [c1; LANES];
    for j in 1..LANES {
        s[j] = s[j - 1] * c1 + c[j - 1] * s1;
        c[j] = c[j - 1] * c1 - s[j - 1] * s1;
    }
    (s, c, s[LANES - 1], c[LANES - 1])
}

#[inline]
fn rotate(s: &mut [f64; LANES], c: &mut [f64; LANES], sr: f64, cr: f64) {
    for j in 0..LANES {
        let (sk, ck) = (s[j], c[j]);
        s[j] = sk * cr + ck * sr;
        c[j] = ck * cr - sk * sr;
    }
}

/// Writes one dimension's block `[sin 1x..sin nx, cos 1x..cos nx, x]`.
#[inline]
fn encode_one(x: f32, n: usize, out: &mut [f32]) {
    let (sins, rest) = out.split_at_mut(n);
    let (coss, last) = rest.split_at_mut(n);
    let (mut s, mut c, sr, cr) = first_block(x as f64);
    for (so, co) in sins.chunks_mut(LANES).zip(coss.chunks_mut(LANES)) {
        for (o, v) in so.iter_mut().zip(&s) {
            *o = *v as f32;
        }
        for (o, v) in co.iter_mut().zip(&c) {
            *o = *v as f32;
        }
        rotate(&mut s, &mut c, sr, cr);
    }
    last[0] = x;
}

/// `d/dx` of `sum_k gs_k sin(kx) + gc_k cos(kx) + gx x` for one dimension's block of `grad_output`.
#[inline]
fn grad_one(x: f32, n: usize, go: &[f32]) -> f32 {
    let (gsin, rest) = go.split_at(n);
    let (gcos, glast) = rest.split_at(n);
    let (mut s, mut c, sr, cr) = first_block(x as f64);
    let mut acc = [0.0f64; LANES];
    for (b, (gs, gc)) in gsin.chunks(LANES).zip(gcos.chunks(LANES)).enumerate() {
        for j in 0..gs.len() {
            let k = (b * LANES + j + 1) as f64;
            acc[j] += k * (gs[j] as f64 * c[j] - gc[j] as f64 * s[j]);
        }
        rotate(&mut s, &mut c, sr, cr);
    }
    (acc.iter().sum::<f64>() + glast[0] as f64) as f32
}

impl Encoding for Fourier {
    fn describe(&self) -> String {
        format!("fourier({})", self.order)
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.width()
    }
    fn flops_per_sample(&self) -> u64 {
        // One sin_cos (~20 flops) plus 6 flops per recurrence step, per dimension.
        (self.dims * (20 + 6 * self.order)) as u64
    }

    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        let (dims, n, width) = (self.dims, self.order, self.width());
        let block = 2 * n + 1;
        let batch = input.len() / dims;
        assert!(
            output.len() >= batch * width,
            "fourier forward: output has {} values, needs {}",
            output.len(),
            batch * width
        );
        output[..batch * width]
            .par_chunks_mut(rows::ROWS_PER_TASK * width)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .for_each(|(out, inp)| {
                for (o, &x) in out.chunks_exact_mut(block).zip(inp) {
                    encode_one(x, n, o);
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
        // No parameters: without an input gradient there is nothing to compute.
        let Some(gx) = grad_input else { return };
        let (dims, n, width) = (self.dims, self.order, self.width());
        let block = 2 * n + 1;
        gx.par_chunks_mut(rows::ROWS_PER_TASK * dims)
            .zip(input.par_chunks(rows::ROWS_PER_TASK * dims))
            .zip(grad_output.par_chunks(rows::ROWS_PER_TASK * width))
            .for_each(|((gx, inp), go)| {
                for ((g, &x), go) in gx.iter_mut().zip(inp).zip(go.chunks_exact(block)) {
                    *g = grad_one(x, n, go);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck;
    use crate::rng::seeded;
    use rand::Rng as _;

    fn build(dims: usize, order: usize) -> Box<dyn Encoding> {
        FourierSpec { order }.build(&BuildContext { input_dims: dims, seed: 0, max_features: 1 << 20 }).unwrap()
    }

    #[test]
    fn fourier_gradients_match_finite_differences() {
        // 11 rows cover a full group of LANES plus a partial one.
        gradcheck::check_encoding(build(2, 5).as_ref(), 11, 4).unwrap();
        gradcheck::check_encoding(build(3, 16).as_ref(), 3, 5).unwrap();
    }

    #[test]
    fn fourier_width_formula() {
        assert_eq!(build(784, 8).output_dims(), 13_328);
        assert_eq!(build(2, 64).output_dims(), 258);
        assert_eq!(build(784, 32).output_dims(), 50_960);
        assert_eq!(build(784, 64).output_dims(), 101_136);
        assert_eq!(build(1, 1).output_dims(), 3);
    }

    #[test]
    fn fourier_features_by_hand_in_video_order() {
        let enc = build(2, 3);
        let (x, y) = (0.5f32, -1.25f32);
        let mut out = vec![f32::NAN; 14];
        enc.forward(&[], &[x, y], &mut out);
        let mut want = Vec::new();
        for v in [x as f64, y as f64] {
            want.extend([v.sin(), (2.0 * v).sin(), (3.0 * v).sin(), v.cos(), (2.0 * v).cos(), (3.0 * v).cos(), v]);
        }
        for (i, (o, w)) in out.iter().zip(&want).enumerate() {
            assert!((*o as f64 - w).abs() < 1e-6, "feature {i}: {o} vs {w}");
        }
    }

    #[test]
    fn fourier_order_256_matches_direct_sin_cos() {
        let n = 256;
        let enc = build(2, n);
        let mut rng = seeded(11);
        let rows = 37;
        let mut input: Vec<f32> =
            (0..rows * 2).map(|_| rng.gen_range(-std::f32::consts::PI..std::f32::consts::PI)).collect();
        input[0] = std::f32::consts::PI;
        input[1] = -std::f32::consts::PI;
        let mut out = vec![0.0f32; rows * enc.output_dims()];
        enc.forward(&[], &input, &mut out);
        let mut worst = 0.0f64;
        for r in 0..rows {
            for d in 0..2 {
                let x = input[r * 2 + d] as f64;
                let o = &out[r * enc.output_dims() + d * (2 * n + 1)..];
                for k in 0..n {
                    let kx = (k + 1) as f64 * x;
                    worst = worst.max((o[k] as f64 - kx.sin()).abs()).max((o[n + k] as f64 - kx.cos()).abs());
                }
                assert_eq!(o[2 * n], x as f32);
            }
        }
        assert!(worst < 1e-5, "max error {worst:e}");
    }

    #[test]
    fn fourier_backward_without_input_gradient_is_a_no_op() {
        let enc = build(2, 4);
        let mut gp: Vec<f32> = Vec::new();
        enc.backward(&[], &[0.1, 0.2], &[1.0; 18], &mut gp, None);
        assert_eq!(enc.n_params(), 0);
    }

    #[test]
    fn fourier_refuses_order_zero_and_bad_args() {
        let e = EncodingConfig::parse("fourier:0").unwrap_err().to_string();
        assert_eq!(e, "encoding fourier: order must be at least 1, got 0");
        assert!(FourierSpec { order: 0 }.build(&BuildContext { input_dims: 2, seed: 0, max_features: 10 }).is_err());
        let e = EncodingConfig::parse("fourier:abc").unwrap_err().to_string();
        assert!(e.contains("order must be a number, got 'abc'"), "{e}");
        assert!(EncodingConfig::parse("fourier").is_err());
        assert!(EncodingConfig::parse("fourier:8:9").is_err());
    }

    #[test]
    fn fourier_parses_cli_and_round_trips_toml() {
        let c = EncodingConfig::parse("fourier:64").unwrap();
        assert_eq!(c, EncodingConfig::Fourier(FourierSpec { order: 64 }));
        assert_eq!(c.default_input_range(), (-std::f32::consts::PI, std::f32::consts::PI));
        #[derive(Serialize, Deserialize)]
        struct File {
            encoding: EncodingConfig,
        }
        let text = toml::to_string(&File { encoding: c.clone() }).unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap().encoding, c);
        let parsed: File = toml::from_str("[encoding]\ntype = \"fourier\"\norder = 64").unwrap();
        assert_eq!(parsed.encoding, c);
        assert!(toml::from_str::<File>("[encoding]\ntype = \"fourier\"\norder = 64\nsigma = 1").is_err());
    }

    #[test]
    fn every_encoding_s_cli_name_is_its_toml_type() {
        use crate::parts::Part;
        for form in EncodingConfig::FORMS {
            let value = toml::Value::try_from(EncodingConfig::parse(form.examples[0]).unwrap()).unwrap();
            let toml_type = value["type"].as_str().unwrap().replace('_', "");
            assert_eq!(toml_type, form.name.replace('-', ""), "{}", form.name);
        }
    }

    /// Timing of the hot path: `cargo test --release fourier_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fourier_speed() {
        for (n, batch) in [(64, 8192), (256, 8192)] {
            let enc = build(2, n);
            let input: Vec<f32> = (0..batch * 2).map(|i| ((i * 7919) % 1000) as f32 * 0.006 - 3.0).collect();
            let mut out = vec![0.0f32; batch * enc.output_dims()];
            let mut gx = vec![0.0f32; batch * 2];
            let t = std::time::Instant::now();
            for _ in 0..20 {
                enc.forward(&[], &input, &mut out);
            }
            let f = t.elapsed() / 20;
            let t = std::time::Instant::now();
            for _ in 0..20 {
                enc.backward(&[], &input, &out, &mut [], Some(&mut gx));
            }
            println!("fourier({n}) batch {batch}: forward {f:?}, backward {:?}", t.elapsed() / 20);
        }
    }
}
