//! `mlp`, `siren` and `linear`: a stack of dense layers with one activation between them.

use super::dense::Dense;
use super::{Network, ParamTensor};
use crate::activation::{backward_with_column_sums, Activation};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// PyTorch's `nn.Linear` default.
    Default,
    /// SIREN: first layer U(-1/in, 1/in), later layers U(-sqrt(6/in)/omega_0, sqrt(6/in)/omega_0).
    Siren { omega0: f32 },
}

#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Dense>,
    activation: Activation,
    init: Init,
    width: usize,
}

impl Mlp {
    /// `depth` hidden layers of `width` units; depth 0 is a single affine layer.
    pub fn new(inputs: usize, outputs: usize, depth: usize, width: usize, activation: Activation, init: Init) -> Mlp {
        let mut layers = Vec::with_capacity(depth + 1);
        let mut offset = 0;
        let mut fan_in = inputs;
        for l in 0..=depth {
            let fan_out = if l == depth { outputs } else { width };
            let layer = Dense { inputs: fan_in, outputs: fan_out, offset };
            offset += layer.n_params();
            layers.push(layer);
            fan_in = fan_out;
        }
        Mlp { layers, activation, init, width }
    }

    fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    /// Floats per sample of each hidden layer's saved state: the output, and the derivative f'(z) where the
    /// activation needs the pre-activation for it.
    fn hidden_stride(&self) -> usize {
        self.width * if self.activation.needs_preactivation() { 2 } else { 1 }
    }

    fn max_width(&self) -> usize {
        self.layers.iter().map(|l| l.inputs.max(l.outputs)).max().unwrap_or(0)
    }
}

impl Network for Mlp {
    fn describe(&self) -> String {
        match (self.depth(), self.init) {
            (0, _) => "linear".into(),
            (d, Init::Siren { omega0 }) => format!("siren {d}x{} (omega_0 {omega0})", self.width),
            (d, Init::Default) => format!("mlp {d}x{} {}", self.width, self.activation),
        }
    }
    fn input_dims(&self) -> usize {
        self.layers[0].inputs
    }
    fn output_dims(&self) -> usize {
        self.layers.last().map(|l| l.outputs).unwrap_or(0)
    }
    fn n_params(&self) -> usize {
        self.layers.iter().map(Dense::n_params).sum()
    }
    fn param_tensors(&self) -> Vec<ParamTensor> {
        Dense::param_tensors(&self.layers)
    }
    fn init_params(&self, params: &mut [f32], rng: &mut Rng) {
        for (i, layer) in self.layers.iter().enumerate() {
            match self.init {
                Init::Default => layer.init_default(params, rng),
                Init::Siren { omega0 } => {
                    let bound =
                        if i == 0 { 1.0 / layer.inputs as f32 } else { (6.0 / layer.inputs as f32).sqrt() / omega0 };
                    layer.init_uniform(params, bound, rng);
                }
            }
        }
    }
    fn flops_per_sample(&self) -> u64 {
        self.layers.iter().map(Dense::flops_per_sample).sum::<u64>() + (self.depth() * self.width) as u64
    }
    fn workspace_per_sample(&self) -> usize {
        // Saved hidden states, two gradient buffers used in turn, and a column of ones for bias gradients.
        self.depth() * self.hidden_stride() + 2 * self.max_width() + 1
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]) {
        let batch = input.len() / self.input_dims();
        let keep_z = self.activation.needs_preactivation();
        let (mut saved, _) = workspace.split_at_mut(batch * self.depth() * self.hidden_stride());
        let mut prev: &[f32] = input;
        for layer in &self.layers[..self.depth()] {
            let (state, rest) = saved.split_at_mut(batch * self.hidden_stride());
            saved = rest;
            let (z, a) = state.split_at_mut(batch * self.width);
            layer.forward_linear(params, prev, batch, z);
            if keep_z {
                // z keeps f'(z) for the backward pass, which needs nothing else of it.
                self.activation.forward_rows_with_derivative(layer.bias(params), z, a);
            } else {
                self.activation.forward_rows(layer.bias(params), z, a, false);
            }
            prev = if keep_z { a } else { z };
        }
        let last = self.layers[self.depth()];
        last.forward_linear(params, prev, batch, output);
        Activation::Identity.forward_rows(last.bias(params), output, &mut [], false);
    }

    fn backward(
        &self,
        params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        workspace: &mut [f32],
        grad_params: &mut [f32],
        mut grad_input: Option<&mut [f32]>,
    ) {
        let batch = input.len() / self.input_dims();
        let keep_z = self.activation.needs_preactivation();
        let stride = batch * self.hidden_stride();
        let (saved, rest) = workspace.split_at_mut(batch * self.depth() * self.hidden_stride());
        let (g0, rest) = rest.split_at_mut(batch * self.max_width());
        let (g1, rest) = rest.split_at_mut(batch * self.max_width());
        let ones = &mut rest[..batch];
        ones.fill(1.0);
        let mut bufs = [g0, g1];
        // The gradient flowing down starts as grad_output, then lives in bufs[turn].
        let mut turn: Option<usize> = None;
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let (lower, upper) = bufs.split_at_mut(1);
            let (cur, next): (&[f32], &mut [f32]) = match turn {
                None => (grad_output, &mut *lower[0]),
                Some(0) => (&*lower[0], &mut *upper[0]),
                Some(_) => (&*upper[0], &mut *lower[0]),
            };
            let gz = &cur[..batch * layer.outputs];
            let x: &[f32] = if l == 0 {
                input
            } else {
                let state = &saved[(l - 1) * stride..l * stride];
                if keep_z {
                    &state[batch * self.width..]
                } else {
                    state
                }
            };
            // Hidden layers got their bias gradient from the activation pass below; only the output layer needs the
            // column sum of its gradient done separately.
            let ones_here = (l == self.depth()).then_some(&ones[..]);
            if l == 0 {
                layer.backward(params, x, gz, batch, ones_here, grad_params, grad_input.as_deref_mut());
                break;
            }
            let gx = &mut next[..batch * layer.inputs];
            layer.backward(params, x, gz, batch, ones_here, grad_params, Some(&mut *gx));
            let state = &saved[(l - 1) * stride..l * stride];
            let below = self.layers[l - 1];
            let bias_grad = &mut grad_params[below.bias_offset()..below.bias_offset() + below.outputs];
            let saved_state = if keep_z { &state[..batch * self.width] } else { state };
            backward_with_column_sums(self.activation, saved_state, keep_z, gx, self.width, bias_grad);
            turn = Some(match turn {
                None | Some(1) => 0,
                Some(_) => 1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::test_support::check_network;

    #[test]
    fn gradients_match_finite_differences_for_every_activation() {
        for act in [
            Activation::LeakyRelu(0.1),
            Activation::Gelu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Sine(1.5),
            Activation::Identity,
        ] {
            check_network(&Mlp::new(3, 2, 3, 7, act, Init::Default), 5);
        }
    }

    #[test]
    fn siren_and_linear_gradients_match_finite_differences() {
        check_network(&Mlp::new(2, 3, 2, 6, Activation::Sine(3.0), Init::Siren { omega0: 3.0 }), 4);
        check_network(&Mlp::new(4, 2, 0, 0, Activation::Identity, Init::Default), 6);
    }

    #[test]
    fn linear_network_is_an_affine_map() {
        let net = Mlp::new(2, 1, 0, 0, Activation::Identity, Init::Default);
        let params = [2.0, -3.0, 0.5];
        let mut out = [0.0; 2];
        let mut ws = vec![0.0; 2 * net.workspace_per_sample()];
        net.forward(&params, &[1.0, 1.0, 0.5, -1.0], &mut out, &mut ws);
        assert_eq!(out, [-0.5, 4.5]);
        assert_eq!(net.n_params(), 3);
    }

    #[test]
    fn siren_initialisation_bounds() {
        let net = Mlp::new(2, 1, 2, 64, Activation::Sine(30.0), Init::Siren { omega0: 30.0 });
        let mut params = vec![0.0; net.n_params()];
        net.init_params(&mut params, &mut crate::rng::seeded(1));
        let t = net.param_tensors();
        let w0 = &params[t[0].offset..t[0].offset + 128];
        assert!(w0.iter().all(|w| w.abs() <= 0.5) && w0.iter().any(|w| w.abs() > 0.4));
        let w1 = &params[t[2].offset..t[2].offset + 64 * 64];
        let bound = (6.0f32 / 64.0).sqrt() / 30.0;
        assert!(w1.iter().all(|w| w.abs() <= bound) && w1.iter().any(|w| w.abs() > 0.9 * bound));
    }
}
