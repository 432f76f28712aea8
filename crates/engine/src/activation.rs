//! Element-wise activations, fused with the bias add of the layer that precedes them.

use crate::error::{EngineError, Result};
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

pub const NAMES: &str = "relu, leaky_relu[(slope)], gelu, tanh, sigmoid, sine[(omega)], identity";

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
                let v: f32 = inner.trim().parse().map_err(|_| {
                    EngineError::config("activation", format!("'{s}': argument '{inner}' is not a number"))
                })?;
                if !v.is_finite() {
                    return Err(EngineError::config("activation", format!("'{s}': argument must be finite")));
                }
                (n.trim(), Some(v))
            }
            None => (s, None),
        };
        let no_arg = |a: Activation| match arg {
            None => Ok(a),
            Some(_) => Err(EngineError::config("activation", format!("'{name}' takes no argument"))),
        };
        match name.replace('-', "_").to_ascii_lowercase().as_str() {
            "relu" => no_arg(Activation::Relu),
            "leaky_relu" | "leakyrelu" => match arg.unwrap_or(0.01) {
                // The backward pass reads the slope's side from the output's sign, which needs a slope >= 0.
                s if s < 0.0 => {
                    Err(EngineError::config("activation", format!("'{name}': slope must be >= 0, got {s}")))
                }
                s => Ok(Activation::LeakyRelu(s)),
            },
            "gelu" => no_arg(Activation::Gelu),
            "tanh" => no_arg(Activation::Tanh),
            "sigmoid" => no_arg(Activation::Sigmoid),
            "sine" | "sin" => Ok(Activation::Sine(arg.unwrap_or(1.0))),
            "identity" | "linear" | "none" => no_arg(Activation::Identity),
            _ => Err(EngineError::config("activation", format!("unknown activation '{s}', expected one of: {NAMES}"))),
        }
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

/// Rows handed to one Rayon task: large enough to amortise scheduling, fixed so results never depend on the pool.
const ROWS_PER_TASK: usize = 64;

fn erf(x: f32) -> f32 {
    // Abramowitz-Stegun 7.1.26 is only 1e-7 absolute: enough for f32 and far cheaper than a series.
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6)
            * t
            * (-x * x).exp();
    y.copysign(x)
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
                if z > 0.0 {
                    z
                } else {
                    z * s
                }
            }
            Activation::Gelu => 0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
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
                let cdf = 0.5 * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * z * z).exp() * 0.398_942_3;
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
        let width = bias.len();
        let chunk = ROWS_PER_TASK * width;
        if keep_z {
            z.par_chunks_mut(chunk).zip(a.par_chunks_mut(chunk)).for_each(|(zc, ac)| {
                for (zr, ar) in zc.chunks_exact_mut(width).zip(ac.chunks_exact_mut(width)) {
                    for ((zv, av), b) in zr.iter_mut().zip(ar.iter_mut()).zip(bias) {
                        *zv += b;
                        *av = self.apply(*zv);
                    }
                }
            });
        } else {
            z.par_chunks_mut(chunk).for_each(|zc| {
                for zr in zc.chunks_exact_mut(width) {
                    for (zv, b) in zr.iter_mut().zip(bias) {
                        *zv = self.apply(*zv + b);
                    }
                }
            });
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
            grad.par_chunks_mut(CHUNK).zip(z.par_chunks(CHUNK)).zip(a.par_chunks(CHUNK)).for_each(|((g, z), a)| {
                for ((g, z), a) in g.iter_mut().zip(z).zip(a) {
                    *g *= self.derivative(*z, *a);
                }
            });
        } else {
            grad.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).for_each(|(g, a)| {
                for (g, a) in g.iter_mut().zip(a) {
                    *g *= self.derivative(0.0, *a);
                }
            });
        }
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
