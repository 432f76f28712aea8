//! `fourier_series`: the full tensor-product Fourier series for 2-D and 3-D inputs.
//!
//! Per dimension `d` the factors are `[1, cos(1 x_d), ..., cos(N x_d), sin(1 x_d), ..., sin(N x_d)]` (`F = 2N + 1`
//! of them: every `cos(k x)` and `sin(k x)` with `k` in `0..=N` except `sin(0 x)`, which is identically zero, and with
//! `cos(0 x) = 1`). Each feature is one product of one factor per dimension; the product of all-ones, the constant,
//! is dropped (the network's bias already has it). So the term count is exactly
//!
//! ```text
//! count = (2N + 1)^D - 1        (D = 2: 24 at N = 2, 4,224 at N = 32; D = 3: 124 at N = 2)
//! ```
//!
//! Features are ordered row-major over the factor indices `(i_0, i_1[, i_2])` with the first dimension slowest,
//! skipping the all-zero index: feature `i_0 * F + i_1 - 1` in 2-D. Unlike `fourier`, this captures interactions
//! between dimensions (e.g. `sin(x) cos(y)`), at a cost that grows as `N^D`, which is why it refuses more features
//! than `BuildContext::max_features` and inputs of more than 3 dimensions.
//!
//! CLI: `fourier-series:N`; TOML: `type = "fourier_series"`, `order = N`. Inputs are mapped to (-PI, PI).

use super::{parse_count_arg, BuildContext, Encoding, EncodingSpec};
use crate::error::{EngineError, Result};
use crate::parts::Form;
use crate::rows;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FourierSeriesSpec {
    /// Highest frequency `N` per dimension.
    pub order: usize,
}

const FIELD: &str = "encoding fourier_series";

/// `(2N + 1)^dims - 1`, or `None` when it does not fit in a `usize`.
pub fn term_count(order: usize, dims: usize) -> Option<usize> {
    order.checked_mul(2)?.checked_add(1)?.checked_pow(dims as u32).map(|c| c - 1)
}

impl FourierSeriesSpec {
    fn validate(&self) -> Result<()> {
        if self.order == 0 {
            return Err(EngineError::config(FIELD, "order must be at least 1, got 0"));
        }
        Ok(())
    }
}

impl EncodingSpec for FourierSeriesSpec {
    const FORM: Form =
        Form::new("fourier-series", "fourier-series:N", &["fourier-series:8"], "the full 2-D/3-D tensor product");

    fn from_args(args: &[&str]) -> Result<Self> {
        let spec = FourierSeriesSpec { order: parse_count_arg("fourier-series", "order", "N", args)? };
        spec.validate()?;
        Ok(spec)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Encoding>> {
        self.validate()?;
        let dims = ctx.input_dims;
        if !(2..=3).contains(&dims) {
            return Err(EngineError::config(
                FIELD,
                format!(
                    "fourier_series needs 2 or 3 input dimensions, got {dims}; use fourier (per-dimension) instead"
                ),
            ));
        }
        let n = self.order;
        match term_count(n, dims) {
            Some(count) if count <= ctx.max_features => Ok(Box::new(FourierSeries { dims, order: n, count })),
            Some(count) => Err(EngineError::config(
                FIELD,
                format!(
                    "order {n} on {dims} inputs gives (2*{n}+1)^{dims}-1 = {count} features, more than max_features {}; lower the order",
                    ctx.max_features
                ),
            )),
            None => Err(EngineError::config(
                FIELD,
                format!("order {n} on {dims} inputs gives more than {} features; lower the order", usize::MAX),
            )),
        }
    }

    fn default_input_range(&self) -> (f32, f32) {
        (-std::f32::consts::PI, std::f32::consts::PI)
    }
}

#[derive(Debug)]
pub struct FourierSeries {
    dims: usize,
    order: usize,
    count: usize,
}

thread_local! {
    /// Per-thread factor scratch, so that steady-state training allocates nothing.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl FourierSeries {
    fn factors_per_dim(&self) -> usize {
        2 * self.order + 1
    }

    /// Fills `f` with the factors of `x` and `df` with their derivatives, in the order of the module doc.
    fn factors(&self, x: f32, f: &mut [f32], df: &mut [f32]) {
        let n = self.order;
        f[0] = 1.0;
        df[0] = 0.0;
        // f64 angle addition: accurate to ~1e-13 at any order we accept, one sin_cos per dimension.
        let (s1, c1) = (x as f64).sin_cos();
        let (mut s, mut c) = (s1, c1);
        for k in 1..=n {
            let kf = k as f64;
            f[k] = c as f32;
            df[k] = (-kf * s) as f32;
            f[n + k] = s as f32;
            df[n + k] = (kf * c) as f32;
            (s, c) = (s * c1 + c * s1, c * c1 - s * s1);
        }
    }

    /// Runs `body(row_factors, row_derivatives, row_index_in_chunk)` with the factors of every dimension laid out as
    /// `[dims][F]`, padding 2-D to 3-D with the single factor 1 so that one loop nest serves both.
    fn with_factors(&self, inp: &[f32], mut body: impl FnMut(usize, [&[f32]; 3], [&[f32]; 3])) {
        let ff = self.factors_per_dim();
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            scratch.resize(6 * ff, 0.0);
            let (f, df) = scratch.split_at_mut(3 * ff);
            f[2 * ff] = 1.0;
            df[2 * ff] = 0.0;
            for (r, row) in inp.chunks_exact(self.dims).enumerate() {
                for (d, &x) in row.iter().enumerate() {
                    self.factors(x, &mut f[d * ff..(d + 1) * ff], &mut df[d * ff..(d + 1) * ff]);
                }
                let n2 = if self.dims == 3 { ff } else { 1 };
                body(
                    r,
                    [&f[..ff], &f[ff..2 * ff], &f[2 * ff..2 * ff + n2]],
                    [&df[..ff], &df[ff..2 * ff], &df[2 * ff..2 * ff + n2]],
                );
            }
        });
    }
}

impl Encoding for FourierSeries {
    fn describe(&self) -> String {
        format!("fourier_series({}; (2*{}+1)^{}-1 = {} terms)", self.order, self.order, self.dims, self.count)
    }
    fn input_dims(&self) -> usize {
        self.dims
    }
    fn output_dims(&self) -> usize {
        self.count
    }
    fn flops_per_sample(&self) -> u64 {
        (self.count * (self.dims - 1) + self.dims * 6 * self.order) as u64
    }

    fn forward(&self, _params: &[f32], input: &[f32], output: &mut [f32]) {
        let (dims, width) = (self.dims, self.count);
        let batch = input.len() / dims;
        output[..batch * width]
            .par_chunks_mut(rows::SERIES_ROWS_PER_TASK * width)
            .zip(input.par_chunks(rows::SERIES_ROWS_PER_TASK * dims))
            .for_each(|(out, inp)| {
                self.with_factors(inp, |r, [f0, f1, f2], _| {
                    let o = &mut out[r * width..(r + 1) * width];
                    // Index of the full product minus one, as the constant term is not stored.
                    let mut t = 0usize;
                    for &a in f0 {
                        for &b in f1 {
                            let ab = a * b;
                            for &c in f2 {
                                if t > 0 {
                                    o[t - 1] = ab * c;
                                }
                                t += 1;
                            }
                        }
                    }
                });
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
        let (dims, width) = (self.dims, self.count);
        gx.par_chunks_mut(rows::SERIES_ROWS_PER_TASK * dims)
            .zip(input.par_chunks(rows::SERIES_ROWS_PER_TASK * dims))
            .zip(grad_output.par_chunks(rows::SERIES_ROWS_PER_TASK * width))
            .for_each(|((gx, inp), go)| {
                self.with_factors(inp, |r, [f0, f1, f2], [d0, d1, d2]| {
                    let g = &go[r * width..(r + 1) * width];
                    let mut acc = [0.0f64; 3];
                    let mut t = 0usize;
                    for i in 0..f0.len() {
                        for j in 0..f1.len() {
                            // Contract the last dimension first: value and derivative weighted by the gradient.
                            let (mut inner, mut inner_d) = (0.0f64, 0.0f64);
                            for k in 0..f2.len() {
                                if t > 0 {
                                    inner += (g[t - 1] * f2[k]) as f64;
                                    inner_d += (g[t - 1] * d2[k]) as f64;
                                }
                                t += 1;
                            }
                            acc[0] += (d0[i] * f1[j]) as f64 * inner;
                            acc[1] += (f0[i] * d1[j]) as f64 * inner;
                            acc[2] += (f0[i] * f1[j]) as f64 * inner_d;
                        }
                    }
                    for (d, a) in acc.iter().take(dims).enumerate() {
                        gx[r * dims + d] = *a as f32;
                    }
                });
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::EncodingConfig;
    use crate::gradcheck;

    fn ctx(dims: usize) -> BuildContext {
        BuildContext { input_dims: dims, seed: 0, max_features: 100_000 }
    }

    #[test]
    fn fourier_series_gradients_match_finite_differences() {
        let enc = FourierSeriesSpec { order: 3 }.build(&ctx(2)).unwrap();
        gradcheck::check_encoding(enc.as_ref(), 20, 6).unwrap();
        let enc = FourierSeriesSpec { order: 2 }.build(&ctx(3)).unwrap();
        gradcheck::check_encoding(enc.as_ref(), 20, 7).unwrap();
    }

    /// Every product of `cos(k x_d)` / `sin(k x_d)` with `k` in `0..=n`, minus zero and constant terms, as
    /// `(is_sin, k)` per dimension, in the order the encoding stores them.
    fn brute_force(n: usize, dims: usize) -> Vec<Vec<(bool, usize)>> {
        let per_dim: Vec<(bool, usize)> = (0..=n)
            .map(|k| (false, k))
            .chain((0..=n).map(|k| (true, k)))
            .filter(|&(is_sin, k)| !(is_sin && k == 0))
            .collect();
        let mut terms: Vec<Vec<(bool, usize)>> = vec![vec![]];
        for _ in 0..dims {
            terms =
                terms.into_iter().flat_map(|t| per_dim.iter().map(move |f| [t.clone(), vec![*f]].concat())).collect();
        }
        terms.retain(|t| t.iter().any(|&(is_sin, k)| is_sin || k > 0));
        terms
    }

    #[test]
    fn fourier_series_term_count_matches_brute_force() {
        for (n, dims) in [(2, 2), (1, 2), (5, 2), (2, 3), (3, 3)] {
            let want = brute_force(n, dims).len();
            assert_eq!(term_count(n, dims), Some(want), "order {n}, {dims}-D");
            assert_eq!(FourierSeriesSpec { order: n }.build(&ctx(dims)).unwrap().output_dims(), want);
        }
        assert_eq!(brute_force(2, 2).len(), 24);
        assert_eq!(term_count(32, 2), Some(4224));
        let d = FourierSeriesSpec { order: 2 }.build(&ctx(2)).unwrap().describe();
        assert!(d.contains("24 terms"), "{d}");
    }

    #[test]
    fn fourier_series_values_match_brute_force_products() {
        for (n, dims, x) in [(2usize, 2usize, vec![0.7f32, -1.9]), (2, 3, vec![0.3, 2.5, -0.4])] {
            let enc = FourierSeriesSpec { order: n }.build(&ctx(dims)).unwrap();
            let mut out = vec![f32::NAN; enc.output_dims()];
            enc.forward(&[], &x, &mut out);
            for (t, (term, o)) in brute_force(n, dims).iter().zip(&out).enumerate() {
                let want: f64 = term
                    .iter()
                    .zip(&x)
                    .map(
                        |(&(is_sin, k), &x)| {
                            if is_sin {
                                (k as f64 * x as f64).sin()
                            } else {
                                (k as f64 * x as f64).cos()
                            }
                        },
                    )
                    .product();
                assert!((*o as f64 - want).abs() < 1e-5, "{dims}-D term {t} {term:?}: {o} vs {want}");
            }
        }
    }

    #[test]
    fn fourier_series_refuses_wrong_dims_too_many_terms_and_bad_args() {
        let e = FourierSeriesSpec { order: 8 }.build(&ctx(784)).unwrap_err().to_string();
        assert!(e.contains("784") && e.contains("use fourier"), "{e}");
        assert!(FourierSeriesSpec { order: 8 }.build(&ctx(1)).is_err());
        let small = BuildContext { input_dims: 3, seed: 0, max_features: 1000 };
        let e = FourierSeriesSpec { order: 10 }.build(&small).unwrap_err().to_string();
        assert!(e.contains("9260") && e.contains("max_features 1000"), "{e}");
        assert!(FourierSeriesSpec { order: 1 << 40 }.build(&small).is_err());
        let e = EncodingConfig::parse("fourier-series:0").unwrap_err().to_string();
        assert!(e.contains("order must be at least 1, got 0"), "{e}");
        assert!(EncodingConfig::parse("fourier-series:x").unwrap_err().to_string().contains("'x'"));
    }

    #[test]
    fn fourier_series_parses_cli_and_round_trips_toml() {
        let want = EncodingConfig::FourierSeries(FourierSeriesSpec { order: 12 });
        assert_eq!(EncodingConfig::parse("fourier-series:12").unwrap(), want);
        assert_eq!(EncodingConfig::parse("fourier_series:12").unwrap(), want);
        let text = toml::to_string(&want).unwrap();
        assert!(text.contains("type = \"fourier_series\""), "{text}");
        assert_eq!(toml::from_str::<EncodingConfig>(&text).unwrap(), want);
        assert!(toml::from_str::<EncodingConfig>("type = \"fourier_series\"\norder = 2\nlevels = 3").is_err());
    }
}
