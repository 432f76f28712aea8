//! Element-wise activations, fused with the bias add of the layer that precedes them.

use crate::error::{EngineError, Result};
use crate::parts::{self, Form, Part};
use crate::rows;
use crate::simd::{self, multiversion};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Gelu,
    Tanh,
    Sigmoid,
    /// `sin(omega * z)`; SIREN uses omega_0 = 30, a plain `sine` has omega 1.
    Sine(f32),
    Identity,
}

impl Part for Activation {
    const KIND: &'static str = "activation";
    const FORMS: &'static [Form] = &[
        Form::new("relu", "relu", &["relu"], ""),
        Form::new("leaky_relu", "leaky_relu[(SLOPE)]", &["leaky_relu", "leaky_relu(0.1)"], "default slope 0.01")
            .aliases(&["leakyrelu"]),
        Form::new("gelu", "gelu", &["gelu"], ""),
        Form::new("tanh", "tanh", &["tanh"], ""),
        Form::new("sigmoid", "sigmoid", &["sigmoid"], ""),
        Form::new("sine", "sine[(OMEGA)]", &["sine", "sine(30)"], "sin(OMEGA z), default omega 1").aliases(&["sin"]),
        Form::new("identity", "identity", &["identity"], "").aliases(&["linear", "none"]),
    ];

    /// An activation's one argument comes in parentheses (`leaky_relu(0.1)`), since the network's form already
    /// uses `:`; [`Activation::from_str`] reads it and gives it here as the only argument.
    fn from_form(form: &Form, args: &[&str]) -> Result<Self> {
        let arg = match args {
            [] => None,
            [a] => Some(a.parse::<f32>().map_err(|_| {
                EngineError::config("activation", format!("'{}': argument '{a}' is not a number", form.name))
            })?),
            _ => return Err(EngineError::config("activation", format!("'{}' takes one argument", form.name))),
        };
        if arg.is_some_and(|v| !v.is_finite()) {
            return Err(EngineError::config("activation", format!("'{}': argument must be finite", form.name)));
        }
        let no_arg = |a: Activation| match arg {
            None => Ok(a),
            Some(_) => Err(EngineError::config("activation", format!("'{}' takes no argument", form.name))),
        };
        match form.name {
            "relu" => no_arg(Activation::Relu),
            "leaky_relu" => match arg.unwrap_or(0.01) {
                // The backward pass reads the slope's side from the output's sign, which needs a slope >= 0.
                s if s < 0.0 => {
                    Err(EngineError::config("activation", format!("'{}': slope must be >= 0, got {s}", form.name)))
                }
                s => Ok(Activation::LeakyRelu(s)),
            },
            "gelu" => no_arg(Activation::Gelu),
            "tanh" => no_arg(Activation::Tanh),
            "sigmoid" => no_arg(Activation::Sigmoid),
            "sine" => Ok(Activation::Sine(arg.unwrap_or(1.0))),
            "identity" => no_arg(Activation::Identity),
            _ => Err(parts::unlisted::<Self>(form)),
        }
    }

    fn parse(s: &str) -> Result<Self> {
        s.parse()
    }
}

impl FromStr for Activation {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (name, arg) = match s.split_once('(') {
            Some((n, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| {
                    EngineError::config(
                        "activation",
                        format!("'{s}' has an unclosed parenthesis; expected e.g. leaky_relu(0.01)"),
                    )
                })?;
                (n.trim(), Some(inner.trim()))
            }
            None => (s, None),
        };
        Activation::from_form(parts::find::<Activation>(name)?, arg.as_slice())
    }
}

impl TryFrom<String> for Activation {
    type Error = EngineError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.to_string()
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu(s) => write!(f, "leaky_relu({s})"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Sine(w) => write!(f, "sine({w})"),
            Activation::Identity => write!(f, "identity"),
        }
    }
}

/// GELU's pieces at `z`: the normal CDF `Phi(z)` and density `phi(z)`. erf is Abramowitz-Stegun 7.1.26 (1.5e-7
/// absolute, enough for f32 and far cheaper than a series); its `exp(-x^2)` with `x = z / sqrt 2` is `exp(-z^2 / 2)`,
/// which the density shares. Branch-free, so that loops over it vectorise.
#[inline(always)]
fn gelu_cdf_pdf(z: f32) -> (f32, f32) {
    let x = z * std::f32::consts::FRAC_1_SQRT_2;
    let e = simd::exp(-x * x);
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6;
    let erf = (1.0 - poly * t * e).copysign(x);
    (0.5 * (1.0 + erf), e * 0.398_942_3)
}

/// Expands `$body` once per activation with `$a` bound to a value whose variant is known at compile time, so that
/// `apply` and `derivative` inline to the one formula inside the loops of `$body`.
macro_rules! specialise {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            Activation::Relu => {
                let $a = Activation::Relu;
                $body
            }
            Activation::LeakyRelu(s) => {
                let $a = Activation::LeakyRelu(s);
                $body
            }
            Activation::Gelu => {
                let $a = Activation::Gelu;
                $body
            }
            Activation::Tanh => {
                let $a = Activation::Tanh;
                $body
            }
            Activation::Sigmoid => {
                let $a = Activation::Sigmoid;
                $body
            }
            Activation::Sine(w) => {
                let $a = Activation::Sine(w);
                $body
            }
            Activation::Identity => {
                let $a = Activation::Identity;
                $body
            }
        }
    };
}

multiversion! {
    /// `z = f(z + bias)` row by row.
    fn forward_inplace(act: Activation, bias: &[f32], z: &mut [f32]) {
        specialise!(act, act => {
            for zr in z.chunks_exact_mut(bias.len()) {
                for (zv, b) in zr.iter_mut().zip(bias) {
                    *zv = act.apply(*zv + b);
                }
            }
        })
    }
}

multiversion! {
    /// `z += bias; a = f(z)` row by row.
    fn forward_keep(act: Activation, bias: &[f32], z: &mut [f32], a: &mut [f32]) {
        specialise!(act, act => {
            for (zr, ar) in z.chunks_exact_mut(bias.len()).zip(a.chunks_exact_mut(bias.len())) {
                for ((zv, av), b) in zr.iter_mut().zip(ar.iter_mut()).zip(bias) {
                    let v = *zv + b;
                    *zv = v;
                    *av = act.apply(v);
                }
            }
        })
    }
}

multiversion! {
    /// `z += bias; a = f(z); z = f'(z)` row by row.
    fn forward_derivative_kernel(act: Activation, bias: &[f32], z: &mut [f32], a: &mut [f32]) {
        specialise!(act, act => {
            for (zr, ar) in z.chunks_exact_mut(bias.len()).zip(a.chunks_exact_mut(bias.len())) {
                for ((zv, av), b) in zr.iter_mut().zip(ar.iter_mut()).zip(bias) {
                    let v = *zv + b;
                    let y = act.apply(v);
                    *av = y;
                    *zv = act.derivative(v, y);
                }
            }
        })
    }
}

multiversion! {
    /// `sums += row` element-wise.
    fn add_kernel(row: &[f32], sums: &mut [f32]) {
        for (s, r) in sums.iter_mut().zip(row) {
            *s += r;
        }
    }
}

multiversion! {
    /// `g *= d` element-wise.
    fn mul_kernel(d: &[f32], g: &mut [f32]) {
        for (g, d) in g.iter_mut().zip(d) {
            *g *= d;
        }
    }
}

multiversion! {
    /// `g *= f'(z, a)`; `z` is read only when the activation needs it.
    fn backward_kernel(act: Activation, z: &[f32], a: &[f32], g: &mut [f32]) {
        specialise!(act, act => {
            if act.needs_preactivation() {
                for (g, z) in g.iter_mut().zip(z) {
                    *g *= act.derivative(*z, 0.0);
                }
            } else {
                for (g, a) in g.iter_mut().zip(a) {
                    *g *= act.derivative(0.0, *a);
                }
            }
        })
    }
}

impl Activation {
    /// Whether the derivative needs the pre-activation `z`; otherwise it is computed from the output alone and the
    /// layer keeps only one buffer.
    pub fn needs_preactivation(self) -> bool {
        matches!(self, Activation::Gelu | Activation::Sine(_))
    }

    #[inline(always)]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu(s) => {
                let neg = z * s;
                if z > 0.0 {
                    z
                } else {
                    neg
                }
            }
            Activation::Gelu => z * gelu_cdf_pdf(z).0,
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + simd::exp(-z)),
            Activation::Sine(w) => (w * z).sin(),
            Activation::Identity => z,
        }
    }

    /// d apply / dz, from the pre-activation `z` (used only where [`needs_preactivation`]) and the output `a`.
    #[inline(always)]
    pub fn derivative(self, z: f32, a: f32) -> f32 {
        match self {
            Activation::Relu => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(s) => {
                if a > 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Activation::Gelu => {
                let (cdf, pdf) = gelu_cdf_pdf(z);
                cdf + z * pdf
            }
            Activation::Tanh => 1.0 - a * a,
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Sine(w) => w * (w * z).cos(),
            Activation::Identity => 1.0,
        }
    }

    /// Adds `bias` to every row of `z` and applies the activation. With `keep_z` the biased pre-activation stays in
    /// `z` and the output goes to `a`; otherwise `a` is ignored and `z` is overwritten with the output.
    pub fn forward_rows(self, bias: &[f32], z: &mut [f32], a: &mut [f32], keep_z: bool) {
        let chunk = rows::ROWS_PER_TASK * bias.len().max(1);
        if keep_z {
            z.par_chunks_mut(chunk).zip(a.par_chunks_mut(chunk)).for_each(|(zc, ac)| forward_keep(self, bias, zc, ac));
        } else {
            z.par_chunks_mut(chunk).for_each(|zc| forward_inplace(self, bias, zc));
        }
    }

    /// One block of rows on the calling thread: `z += bias; z = f(z)`, or with `keep_derivative`
    /// `a = f(z + bias); z = f'(z + bias)`: the backward pass is then one multiplication, and activations whose
    /// derivative shares work with their value (GELU) compute it once.
    pub(crate) fn forward_block(self, bias: &[f32], z: &mut [f32], a: &mut [f32], keep_derivative: bool) {
        if keep_derivative {
            forward_derivative_kernel(self, bias, z, a);
        } else {
            forward_inplace(self, bias, z);
        }
    }

    /// `grad *= f'(z, a)` element-wise: turns the gradient with respect to the output into the one with respect to
    /// the pre-activation. `z` may be empty when the activation does not need it.
    pub fn backward_inplace(self, z: &[f32], a: &[f32], grad: &mut [f32]) {
        if self == Activation::Identity {
            return;
        }
        const CHUNK: usize = 1 << 14;
        if self.needs_preactivation() {
            grad.par_chunks_mut(CHUNK).zip(z.par_chunks(CHUNK)).for_each(|(g, z)| backward_kernel(self, z, &[], g));
        } else {
            grad.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).for_each(|(g, a)| backward_kernel(self, &[], a, g));
        }
    }
}

/// One block of rows on the calling thread: `grad *= f'` from the saved state (the derivative itself, or the
/// output `a`), then adds the rows of the result to `column_sums` (or, without `accumulate`, stores their sum).
pub(crate) fn backward_block_with_column_sums(
    activation: Activation,
    saved: &[f32],
    saved_is_derivative: bool,
    grad: &mut [f32],
    column_sums: &mut [f32],
    accumulate: bool,
) {
    if saved_is_derivative {
        mul_kernel(saved, grad);
    } else if activation != Activation::Identity {
        backward_kernel(activation, &[], saved, grad);
    }
    add_rows(grad, column_sums, accumulate);
}

/// `sums (+)= sum of the rows of grad`, rows `sums.len()` wide, added in row order.
pub(crate) fn add_rows(grad: &[f32], sums: &mut [f32], accumulate: bool) {
    if !accumulate {
        sums.fill(0.0);
    }
    if sums.is_empty() {
        return;
    }
    for row in grad.chunks_exact(sums.len()) {
        add_kernel(row, sums);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 8] = [
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::LeakyRelu(0.2),
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Sine(30.0),
        Activation::Identity,
    ];

    #[test]
    fn derivatives_match_finite_differences() {
        crate::parts::assert_every_form_in::<Activation>(&ALL);
        for act in ALL {
            // Stay away from the kink at 0 where relu-like derivatives are undefined.
            for &z in &[-2.3f32, -0.7, -0.11, 0.13, 0.6, 1.9] {
                let h = 1e-3f64;
                let f = |x: f64| act.apply(x as f32) as f64;
                let numeric = (f(z as f64 + h) - f(z as f64 - h)) / (2.0 * h);
                let analytic = act.derivative(z, act.apply(z)) as f64;
                let tol = 2e-2 * numeric.abs().max(1.0);
                assert!((numeric - analytic).abs() < tol, "{act}: z={z} analytic {analytic} numeric {numeric}");
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Activation::Relu.apply(-1.0), 0.0);
        assert_eq!(Activation::LeakyRelu(0.01).apply(-2.0), -0.02);
        // GELU(1) = 0.5 (1 + erf(1/sqrt 2)) = 0.841344746
        assert!((Activation::Gelu.apply(1.0) - 0.841_344_8).abs() < 1e-6);
        assert!((Activation::Gelu.apply(-0.5) - -0.154_268_5).abs() < 1e-6);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-7);
        assert!((Activation::Sine(30.0).apply(0.01) - (0.3f32).sin()).abs() < 1e-7);
    }

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!("leaky_relu".parse::<Activation>().unwrap(), Activation::LeakyRelu(0.01));
        assert_eq!("leaky_relu(0.2)".parse::<Activation>().unwrap(), Activation::LeakyRelu(0.2));
        assert_eq!("sine(30)".parse::<Activation>().unwrap(), Activation::Sine(30.0));
        for a in ALL {
            assert_eq!(a.to_string().parse::<Activation>().unwrap(), a);
        }
        let err = "swish".parse::<Activation>().unwrap_err().to_string();
        assert!(err.contains("unknown activation 'swish'") && err.contains("gelu"), "{err}");
        assert!("relu(2)".parse::<Activation>().is_err());
        assert!("leaky_relu(x)".parse::<Activation>().is_err());
    }

    #[test]
    fn fused_forward_and_backward_match_scalar_formulas() {
        let width = 5;
        let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.1 - 0.2).collect();
        let z0: Vec<f32> = (0..width * 300).map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0).collect();
        for act in ALL {
            let mut z = z0.clone();
            let mut a = vec![0.0; z.len()];
            act.forward_rows(&bias, &mut z, &mut a, true);
            let mut z_only = z0.clone();
            act.forward_rows(&bias, &mut z_only, &mut [], false);
            for i in 0..z.len() {
                let want = act.apply(z0[i] + bias[i % width]);
                assert_eq!(a[i], want);
                assert_eq!(z_only[i], want);
            }
            let mut g = vec![1.0; z.len()];
            act.backward_inplace(&z, &a, &mut g);
            for i in 0..z.len() {
                assert_eq!(g[i], act.derivative(z[i], a[i]));
            }
        }
    }
}
