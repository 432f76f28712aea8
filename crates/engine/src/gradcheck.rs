//! Finite-difference gradient checks shared by the tests of every part.
//!
//! The scalar checked is `L = sum_i r_i * out_i` with fixed random weights `r`, so one backward pass with
//! `grad_output = r` gives the whole analytic gradient; central differences in f64 give the numeric one.

use crate::encoding::Encoding;
use crate::rng::seeded;
use rand::Rng as _;

/// Tolerances chosen for f32 forward passes: central differences with step `eps` are accurate to about
/// `f32::EPSILON * |L| / eps`, so the absolute tolerance scales with the output's size.
pub struct Tolerance {
    pub eps: f64,
    pub rel: f64,
    pub abs: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { eps: 1e-2, rel: 2e-2, abs: 2e-3 }
    }
}

/// `(params, input) -> output`.
pub type ForwardFn<'a> = dyn Fn(&[f32], &[f32]) -> Vec<f32> + 'a;
/// `(params, input, grad_output) -> (grad_params, grad_input)`.
pub type BackwardFn<'a> = dyn Fn(&[f32], &[f32], &[f32]) -> (Vec<f32>, Vec<f32>) + 'a;

/// Checks `backward` against central differences of `forward` for the parameters and, when `check_input`, the input.
/// At most `max_coords` coordinates of each are checked (chosen at random) to keep the test fast.
#[allow(clippy::too_many_arguments)]
pub fn check(
    params: &[f32],
    input: &[f32],
    n_out: usize,
    forward: &ForwardFn,
    backward: &BackwardFn,
    check_input: bool,
    max_coords: usize,
    tol: &Tolerance,
) -> Result<(), String> {
    let mut rng = seeded(0x9e37);
    let r: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let out = forward(params, input);
    if out.len() != n_out {
        return Err(format!("forward returned {} values, expected {n_out}", out.len()));
    }
    let loss = |p: &[f32], x: &[f32]| -> f64 { forward(p, x).iter().zip(&r).map(|(o, w)| *o as f64 * *w as f64).sum() };
    let (gp, gx) = backward(params, input, &r);
    let mut check_vector = |what: &str, values: &[f32], analytic: &[f32], is_param: bool| -> Result<(), String> {
        if analytic.len() != values.len() {
            return Err(format!("{what}: gradient has {} entries, expected {}", analytic.len(), values.len()));
        }
        let mut coords: Vec<usize> = (0..values.len()).collect();
        if coords.len() > max_coords {
            for i in 0..max_coords {
                let j = rng.gen_range(i..coords.len());
                coords.swap(i, j);
            }
            coords.truncate(max_coords);
        }
        for &i in &coords {
            let mut v = values.to_vec();
            let h = tol.eps * (1.0 + values[i].abs() as f64 * 0.0);
            v[i] = (values[i] as f64 + h) as f32;
            let hp = v[i] as f64 - values[i] as f64;
            let lp = if is_param { loss(&v, input) } else { loss(params, &v) };
            v[i] = (values[i] as f64 - h) as f32;
            let hm = values[i] as f64 - v[i] as f64;
            let lm = if is_param { loss(&v, input) } else { loss(params, &v) };
            let numeric = (lp - lm) / (hp + hm);
            let a = analytic[i] as f64;
            if (a - numeric).abs() > tol.abs + tol.rel * a.abs().max(numeric.abs()) {
                return Err(format!("{what}[{i}]: analytic {a:.6e} vs numeric {numeric:.6e}"));
            }
        }
        Ok(())
    };
    check_vector("params", params, &gp, true)?;
    if check_input {
        check_vector("input", input, &gx, false)?;
    }
    Ok(())
}

/// Checks an encoding on `batch` random inputs in [-1, 1] with parameters from its own initialiser perturbed so that
/// zero-initialised tables are still exercised.
pub fn check_encoding(enc: &dyn Encoding, batch: usize, seed: u64) -> Result<(), String> {
    let mut rng = seeded(seed);
    let mut params = vec![0.0f32; enc.n_params()];
    enc.init_params(&mut params, &mut rng);
    for p in params.iter_mut() {
        *p += rng.gen_range(-0.5f32..0.5);
    }
    let input: Vec<f32> = (0..batch * enc.input_dims()).map(|_| rng.gen_range(-0.9f32..0.9)).collect();
    check_encoding_at(enc, &params, &input, &Tolerance::default())
}

/// Like [`check_encoding`] at given parameters and inputs.
pub fn check_encoding_at(enc: &dyn Encoding, params: &[f32], input: &[f32], tol: &Tolerance) -> Result<(), String> {
    let batch = input.len() / enc.input_dims();
    let n_out = batch * enc.output_dims();
    let forward = |p: &[f32], x: &[f32]| {
        let mut out = vec![0.0f32; n_out];
        enc.forward(p, x, &mut out);
        out
    };
    let backward = |p: &[f32], x: &[f32], g: &[f32]| {
        let mut gp = vec![f32::NAN; p.len()];
        let mut gx = vec![f32::NAN; x.len()];
        enc.backward(p, x, g, &mut gp, Some(&mut gx));
        (gp, gx)
    };
    check(params, input, n_out, &forward, &backward, true, 300, tol)
}
