//! Networks: the trainable body between the encoding and the output head.
//!
//! A network reads `[batch, input_dims]` and writes `[batch, output_dims]` raw outputs (the head is applied after).
//! Activations kept for the backward pass live in a workspace slice the trainer allocates once per batch size.

use crate::activation::Activation;
use crate::error::{EngineError, Result};
use crate::parts::{self, Form, Part};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

mod blocked;
pub mod dense;
pub mod mlp;
pub mod skip;

/// One named tensor inside a part's parameter slice (for checkpoints and comparisons with PyTorch).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamTensor {
    pub name: String,
    pub offset: usize,
    pub shape: Vec<usize>,
}

pub trait Network: Send + Sync + std::fmt::Debug {
    fn describe(&self) -> String;
    fn input_dims(&self) -> usize;
    /// Runs the dense products in `precision` from now on (bf16 where the network supports it).
    fn set_precision(&mut self, _precision: crate::precision::Precision) {}
    /// The precision the dense products run in.
    fn precision(&self) -> crate::precision::Precision {
        crate::precision::Precision::F32
    }
    fn output_dims(&self) -> usize;
    fn n_params(&self) -> usize;
    fn param_tensors(&self) -> Vec<ParamTensor>;
    fn init_params(&self, params: &mut [f32], rng: &mut Rng);
    /// Forward floating-point operations per sample.
    fn flops_per_sample(&self) -> u64;
    /// Workspace floats per sample that [`Network::forward`] and [`Network::backward`] need.
    fn workspace_per_sample(&self) -> usize;
    /// Computes `output` from `input`, keeping in `workspace` what the backward pass needs.
    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]);
    /// Every hidden layer's outputs, `[rows, width]` each, computed plainly rather than by the training path's
    /// blocked kernels: what each neuron computes, for the neurons' view. Empty where there is no hidden layer.
    fn hidden_outputs(&self, params: &[f32], input: &[f32]) -> Vec<Vec<f32>>;
    /// After [`Network::forward`] on the same input and workspace: overwrites `grad_params` with the gradient of
    /// the loss, given its gradient `grad_output` with respect to the output, and writes `grad_input` when asked.
    fn backward(
        &self,
        params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        workspace: &mut [f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    );
}

fn default_activation() -> Activation {
    Activation::LeakyRelu(0.01)
}

fn default_omega() -> f32 {
    30.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NetworkConfig {
    /// `depth` hidden layers of `width` units.
    Mlp {
        depth: usize,
        width: usize,
        #[serde(default = "default_activation")]
        activation: Activation,
    },
    /// The video's skip-connected MLP: every hidden layer after the first sees `[current, previous, input]`.
    Skip {
        depth: usize,
        width: usize,
        #[serde(default = "default_activation")]
        activation: Activation,
    },
    /// SIREN (Sitzmann et al. 2020): sine activations `sin(omega_0 z)` with its initialisation.
    Siren {
        depth: usize,
        width: usize,
        #[serde(default = "default_omega")]
        omega0: f32,
    },
    /// No hidden layer: one affine map from the encoding to the output (the video's single-layer Taylor network).
    Linear {},
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::Mlp { depth: 4, width: 64, activation: default_activation() }
    }
}

fn parse_shape(spec: &str, shape: &str) -> Result<(usize, usize)> {
    let err = || EngineError::config("network", format!("'{spec}': expected DEPTHxWIDTH such as 4x256, got '{shape}'"));
    let (d, w) = shape.split_once(['x', 'X']).ok_or_else(err)?;
    Ok((d.trim().parse().map_err(|_| err())?, w.trim().parse().map_err(|_| err())?))
}

impl Part for NetworkConfig {
    const KIND: &'static str = "network";
    const FORMS: &'static [Form] = &[
        Form::new("mlp", "mlp:DEPTHxWIDTH[:ACT]", &["mlp:4x64", "mlp:4x128", "mlp:4x256", "mlp:6x64:gelu"], ""),
        Form::new("skip", "skip:DEPTHxWIDTH[:ACT]", &["skip:6x64"], "the video's skip-connected MLP"),
        Form::new("siren", "siren:DEPTHxWIDTH[:OMEGA]", &["siren:4x64"], "sine activations, omega 30"),
        Form::new("linear", "linear", &["linear"], "no hidden layer"),
    ];

    fn from_form(form: &Form, args: &[&str]) -> Result<Self> {
        let spec = form.written(args);
        if form.name == "linear" {
            parts::no_args::<Self>(form, args)?;
            return Ok(NetworkConfig::Linear {});
        }
        let [shape, rest @ ..] = args else {
            return Err(EngineError::config("network", format!("'{spec}': expected {}", form.usage)));
        };
        if rest.len() > 1 {
            return Err(EngineError::config("network", format!("'{spec}': expected {}", form.usage)));
        }
        let (depth, width) = parse_shape(&spec, shape)?;
        let activation = || -> Result<Activation> { rest.first().map_or(Ok(default_activation()), |a| a.parse()) };
        Ok(match form.name {
            "mlp" => NetworkConfig::Mlp { depth, width, activation: activation()? },
            "skip" => NetworkConfig::Skip { depth, width, activation: activation()? },
            "siren" => {
                let omega0 = match rest.first() {
                    Some(o) => o.parse().map_err(|_| {
                        EngineError::config("network", format!("'{spec}': omega_0 must be a number, got '{o}'"))
                    })?,
                    None => default_omega(),
                };
                NetworkConfig::Siren { depth, width, omega0 }
            }
            _ => return Err(parts::unlisted::<Self>(form)),
        })
    }
}

impl NetworkConfig {
    /// Parses the CLI form, e.g. `mlp:4x256:leaky_relu`, `siren:3x128:30`, `linear`.
    pub fn parse(spec: &str) -> Result<Self> {
        <Self as Part>::parse(spec)
    }

    pub fn validate(&self) -> Result<()> {
        let check = |depth: usize, width: usize| {
            if depth == 0 {
                return Err(EngineError::config(
                    "network depth",
                    "must be at least 1 (use `linear` for no hidden layer)",
                ));
            }
            if width == 0 {
                return Err(EngineError::config("network width", "must be at least 1, got 0"));
            }
            if depth > 1000 || width > 1 << 16 {
                return Err(EngineError::config("network", format!("{depth}x{width} is too large")));
            }
            Ok(())
        };
        match self {
            NetworkConfig::Mlp { depth, width, .. } | NetworkConfig::Skip { depth, width, .. } => check(*depth, *width),
            NetworkConfig::Siren { depth, width, omega0 } => {
                check(*depth, *width)?;
                if !omega0.is_finite() || *omega0 <= 0.0 {
                    return Err(EngineError::config(
                        "network omega0",
                        format!("must be a positive number, got {omega0}"),
                    ));
                }
                Ok(())
            }
            NetworkConfig::Linear {} => Ok(()),
        }
    }

    pub fn build(&self, input_dims: usize, output_dims: usize) -> Result<Box<dyn Network>> {
        self.validate()?;
        Ok(match *self {
            NetworkConfig::Mlp { depth, width, activation } => {
                Box::new(mlp::Mlp::new(input_dims, output_dims, depth, width, activation, mlp::Init::Default))
            }
            NetworkConfig::Siren { depth, width, omega0 } => Box::new(mlp::Mlp::new(
                input_dims,
                output_dims,
                depth,
                width,
                Activation::Sine(omega0),
                mlp::Init::Siren { omega0 },
            )),
            NetworkConfig::Linear {} => {
                Box::new(mlp::Mlp::new(input_dims, output_dims, 0, 0, Activation::Identity, mlp::Init::Default))
            }
            NetworkConfig::Skip { depth, width, activation } => {
                Box::new(skip::Skip::new(input_dims, output_dims, depth, width, activation))
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Network;
    use crate::gradcheck;
    use crate::rng::seeded;
    use rand::Rng as _;

    /// Finite-difference check of a network's parameter and input gradients.
    pub fn check_network(net: &dyn Network, batch: usize) {
        let mut rng = seeded(7);
        let mut params = vec![0.0; net.n_params()];
        net.init_params(&mut params, &mut rng);
        let input: Vec<f32> = (0..batch * net.input_dims()).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let n_out = batch * net.output_dims();
        let ws_len = batch * net.workspace_per_sample();
        let forward = |p: &[f32], x: &[f32]| {
            let mut out = vec![0.0; n_out];
            let mut ws = vec![0.0; ws_len];
            net.forward(p, x, &mut out, &mut ws);
            out
        };
        let backward = |p: &[f32], x: &[f32], g: &[f32]| {
            let mut out = vec![0.0; n_out];
            let mut ws = vec![f32::NAN; ws_len];
            net.forward(p, x, &mut out, &mut ws);
            let mut gp = vec![f32::NAN; p.len()];
            let mut gx = vec![f32::NAN; x.len()];
            net.backward(p, x, g, &mut ws, &mut gp, Some(&mut gx));
            (gp, gx)
        };
        // A small step keeps piecewise-linear activations from crossing their kink between the two evaluations.
        let tol = gradcheck::Tolerance { eps: 2e-3, rel: 3e-2, abs: 3e-3 };
        gradcheck::check(&params, &input, n_out, &forward, &backward, true, 400, &tol)
            .unwrap_or_else(|e| panic!("{}: {e}", net.describe()));
    }

    /// Outside a Rayon task a batch runs as parallel blocks with transposed weights; inside one (as in chunked
    /// inference) as a single block. Both must compute the same function and gradients.
    pub fn check_blocked_matches_one_block(net: &dyn Network) {
        let batch = 1000;
        let (d_in, d_out) = (net.input_dims(), net.output_dims());
        let mut params = vec![0.0; net.n_params()];
        net.init_params(&mut params, &mut seeded(3));
        let input: Vec<f32> = (0..batch * d_in).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let grad_out: Vec<f32> = (0..batch * d_out).map(|i| ((i * 13) % 17) as f32 / 8.0 - 1.0).collect();
        let run = || {
            let mut out = vec![0.0; batch * d_out];
            let mut ws = vec![0.0; batch * net.workspace_per_sample()];
            let mut gp = vec![0.0; net.n_params()];
            let mut gi = vec![0.0; batch * d_in];
            net.forward(&params, &input, &mut out, &mut ws);
            net.backward(&params, &input, &grad_out, &mut ws, &mut gp, Some(&mut gi));
            (out, gp, gi)
        };
        let blocked = run();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let single = pool.install(|| {
            assert_eq!(super::blocked::block_rows(batch), batch);
            run()
        });
        assert_eq!(super::blocked::block_rows(batch), super::blocked::BLOCK_ROWS);
        for (name, a, b) in
            [("output", &blocked.0, &single.0), ("params", &blocked.1, &single.1), ("input", &blocked.2, &single.2)]
        {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                let desc = net.describe();
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{desc} {name}[{i}]: blocked {x} vs one block {y}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_forms() {
        assert_eq!(
            NetworkConfig::parse("mlp:4x256:leaky_relu").unwrap(),
            NetworkConfig::Mlp { depth: 4, width: 256, activation: Activation::LeakyRelu(0.01) }
        );
        assert_eq!(
            NetworkConfig::parse("skip:8x100:gelu").unwrap(),
            NetworkConfig::Skip { depth: 8, width: 100, activation: Activation::Gelu }
        );
        assert_eq!(
            NetworkConfig::parse("siren:3x64").unwrap(),
            NetworkConfig::Siren { depth: 3, width: 64, omega0: 30.0 }
        );
        assert_eq!(NetworkConfig::parse("linear").unwrap(), NetworkConfig::Linear {});
        for bad in ["mlp", "mlp:4", "mlp:4xq", "cnn:3x3", "mlp:4x8:swish", "linear:3"] {
            let e = NetworkConfig::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("network") || e.starts_with("activation"), "{bad}: {e}");
        }
    }

    #[test]
    fn rejects_zero_sizes() {
        let e = NetworkConfig::parse("mlp:4x0").unwrap().build(2, 1).unwrap_err().to_string();
        assert!(e.contains("width") && e.contains("at least 1"), "{e}");
        let e = NetworkConfig::parse("skip:0x8").unwrap().build(2, 1).unwrap_err().to_string();
        assert!(e.contains("depth"), "{e}");
    }

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let cfg = NetworkConfig::Mlp { depth: 2, width: 8, activation: Activation::Gelu };
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(toml::from_str::<NetworkConfig>(&text).unwrap(), cfg);
        let err = toml::from_str::<NetworkConfig>("type = \"mlp\"\ndepth = 2\nwidth = 3\nwidht = 4\n").unwrap_err();
        assert!(err.to_string().contains("widht"), "{err}");
    }

    /// The neurons' view draws `hidden_outputs`: fed through the output layer by hand (with the skip network's
    /// `[current, previous, input]`), the last hidden layer must give the training path's output.
    #[test]
    fn hidden_outputs_reproduce_the_forward_pass() {
        use crate::rng::seeded;
        let (rows, d_in, d_out) = (37, 3, 2);
        let input: Vec<f32> = (0..rows * d_in).map(|i| ((i * 29) % 53) as f32 / 26.0 - 1.0).collect();
        for spec in ["mlp:3x8:tanh", "mlp:2x5:gelu", "siren:2x6", "skip:3x7:leaky_relu", "skip:1x4:sigmoid", "linear"] {
            let net = NetworkConfig::parse(spec).unwrap().build(d_in, d_out).unwrap();
            let mut params = vec![0.0; net.n_params()];
            net.init_params(&mut params, &mut seeded(11));
            let mut out = vec![0.0; rows * d_out];
            let mut ws = vec![0.0; rows * net.workspace_per_sample()];
            net.forward(&params, &input, &mut out, &mut ws);
            let hidden = net.hidden_outputs(&params, &input);
            let tensors = net.param_tensors();
            assert_eq!(hidden.len(), tensors.len() / 2 - 1, "{spec}: one output per hidden layer");
            let (w, b) = (&tensors[tensors.len() - 2], &tensors[tensors.len() - 1]);
            let fan_in = w.shape[1];
            for r in 0..rows {
                let mut x: Vec<f32> = Vec::new();
                if let Some(last) = hidden.last() {
                    let width = last.len() / rows;
                    x.extend_from_slice(&last[r * width..(r + 1) * width]);
                    if spec.starts_with("skip") && hidden.len() >= 2 {
                        x.extend_from_slice(&hidden[hidden.len() - 2][r * width..(r + 1) * width]);
                    }
                }
                if x.len() < fan_in {
                    x.extend_from_slice(&input[r * d_in..(r + 1) * d_in]);
                }
                assert_eq!(x.len(), fan_in, "{spec}");
                for o in 0..d_out {
                    let weights = &params[w.offset + o * fan_in..w.offset + (o + 1) * fan_in];
                    let want = params[b.offset + o] + x.iter().zip(weights).map(|(a, c)| a * c).sum::<f32>();
                    let got = out[r * d_out + o];
                    assert!((want - got).abs() <= 1e-4 * (1.0 + got.abs()), "{spec} row {r}: {want} vs {got}");
                }
            }
        }
    }
}
