//! `mlp`, `siren` and `linear`: a stack of dense layers with one activation between them.

use super::blocked::{
    backward_in_blocks, forward_in_blocks, layer_backward, with_bf16_weights, with_widened, Bf16Weights, Block,
    ForwardWeights,
};
use super::dense::Dense;
use super::{Network, ParamTensor};
use crate::activation::{add_rows, backward_block_with_column_sums, Activation};
use crate::linalg::with_scratch;
use crate::precision::{as_bf16, as_bf16_mut, convert, Operand, Precision, BF16_MIN_DIM};
use crate::rng::Rng;

thread_local! {
    /// A block's pre-activations and outputs in f32 during a bf16 forward pass: grown once, then reused.
    static HIDDEN_F32: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The output part of a hidden layer's saved state: after f'(z) with `keep`, else the whole state.
fn output_of<T>(state: &[T], len: usize, keep: bool) -> &[T] {
    if keep {
        &state[len..2 * len]
    } else {
        &state[..len]
    }
}

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
    precision: Precision,
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
        Mlp { layers, activation, init, width, precision: Precision::F32 }
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
    fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
    fn precision(&self) -> Precision {
        self.precision
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
        // Saved hidden states and two gradient buffers used in turn.
        self.saved_per_sample() + 2 * self.max_width()
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]) {
        let d_in = self.input_dims();
        let last = self.layers[self.depth()];
        if self.depth() == 0 {
            last.forward_linear(params, input, input.len() / d_in, output);
            Activation::Identity.forward_rows(last.bias(params), output, &mut [], false);
            return;
        }
        let keep = self.activation.needs_preactivation();
        // The scratch part is the backward pass's gradient buffers, which the forward pass does not use.
        let (per_row, scratch_per_row) = (self.saved_per_sample(), 2 * self.max_width());
        forward_in_blocks(
            &self.layers,
            params,
            (input, output),
            workspace,
            (per_row, scratch_per_row),
            self.precision,
            |weights, x, out, saved, _scratch| {
                if self.saves_bf16() {
                    self.forward_block_bf16(params, weights, x, out, as_bf16_mut(saved));
                    return;
                }
                let mut saved = saved;
                let rows = x.len() / d_in;
                let mut prev: &[f32] = x;
                for (l, layer) in self.layers[..self.depth()].iter().enumerate() {
                    let (state, rest) = std::mem::take(&mut saved).split_at_mut(rows * self.hidden_stride());
                    saved = rest;
                    let (z, a) = state.split_at_mut(rows * self.width);
                    weights.product(l, prev, rows, z);
                    // With `keep`, z keeps f'(z) for the backward pass, which needs nothing else of it.
                    self.activation.forward_block(layer.bias(params), z, a, keep);
                    prev = if keep { a } else { z };
                }
                weights.product(self.depth(), prev, rows, out);
                Activation::Identity.forward_block(last.bias(params), out, &mut [], false);
            },
        );
    }

    fn hidden_outputs(&self, params: &[f32], input: &[f32]) -> Vec<Vec<f32>> {
        let rows = input.len() / self.input_dims();
        let mut outputs: Vec<Vec<f32>> = Vec::with_capacity(self.depth());
        for layer in &self.layers[..self.depth()] {
            let x = outputs.last().map_or(input, Vec::as_slice);
            let a = layer.activate(params, x, rows, self.activation);
            outputs.push(a);
        }
        outputs
    }

    fn backward(
        &self,
        params: &[f32],
        input: &[f32],
        grad_output: &[f32],
        workspace: &mut [f32],
        grad_params: &mut [f32],
        grad_input: Option<&mut [f32]>,
    ) {
        if self.depth() == 0 {
            let (layer, d_out) = (self.layers[0], self.output_dims());
            let batch = input.len() / self.input_dims();
            layer.backward(params, input, grad_output, batch, None, grad_params, grad_input);
            add_rows(grad_output, &mut grad_params[layer.bias_offset()..layer.bias_offset() + d_out], false);
            return;
        }
        // The forward pass's layout: saved states, then the two gradient buffers used in turn.
        let sizes = (self.saved_per_sample(), 2 * self.max_width());
        with_bf16_weights(&self.layers, params, self.precision, |w16| {
            backward_in_blocks(&self.layers, (input, grad_output), workspace, sizes, grad_params, grad_input, |b| {
                self.backward_block(params, w16, b)
            })
        });
    }
}

impl Mlp {
    /// Saved floats per sample: every hidden layer's state. The forward pass lays them out block by block
    /// (`[block][layer][rows, hidden_stride]`) so that a block's state is one contiguous slice. In bf16 the states
    /// are stored as bf16, two to a float: the products read them as bf16 anyway, and W3 needs half the memory.
    fn saved_per_sample(&self) -> usize {
        let values = self.depth() * self.hidden_stride();
        if self.saves_bf16() {
            values.div_ceil(2)
        } else {
            values
        }
    }

    /// Whether the hidden states are saved in bf16: in a bf16 pass whose hidden layers are wide enough for bf16
    /// products; narrower ones keep f32 states.
    fn saves_bf16(&self) -> bool {
        self.precision == Precision::Bf16 && self.width >= BF16_MIN_DIM
    }

    /// The forward pass over one block in bf16: each hidden layer's product and activation in an f32 buffer of the
    /// thread's, its output (and f'(z) with `keep`) rounded into the block's saved state, which the next product
    /// reads as it is.
    fn forward_block_bf16(
        &self,
        params: &[f32],
        weights: &ForwardWeights,
        x: &[f32],
        out: &mut [f32],
        saved: &mut [u16],
    ) {
        let (rows, stride, w) = (x.len() / self.input_dims(), self.hidden_stride(), self.width);
        let keep = self.activation.needs_preactivation();
        with_scratch(&HIDDEN_F32, |buf| {
            if buf.len() < rows * stride {
                buf.resize(rows * stride, 0.0);
            }
            let (z, a) = buf[..rows * stride].split_at_mut(rows * w);
            for (l, layer) in self.layers[..self.depth()].iter().enumerate() {
                let input = match l {
                    0 => Operand::F32(x),
                    _ => Operand::Bf16(output_of(&saved[(l - 1) * rows * stride..l * rows * stride], rows * w, keep)),
                };
                weights.product_of(l, input, rows, z);
                self.activation.forward_block(layer.bias(params), z, a, keep);
                let state = &mut saved[l * rows * stride..(l + 1) * rows * stride];
                let (first, second) = state.split_at_mut(rows * w);
                convert(z, first);
                if keep {
                    convert(a, second);
                }
            }
            let top =
                output_of(&saved[(self.depth() - 1) * rows * stride..self.depth() * rows * stride], rows * w, keep);
            weights.product_of(self.depth(), Operand::Bf16(top), rows, out);
        });
        let last = self.layers[self.depth()];
        Activation::Identity.forward_block(last.bias(params), out, &mut [], false);
    }

    /// The backward pass over one block on the calling thread.
    fn backward_block(&self, params: &[f32], w16: Option<Bf16Weights>, b: Block) {
        let stride = self.hidden_stride();
        let keep = self.activation.needs_preactivation();
        let Block { input: x0, saved, grad_output, grad, accumulate, scratch, mut grad_input } = b;
        let rows = x0.len() / self.input_dims();
        let bf16 = self.saves_bf16();
        let saved16 = as_bf16(saved);
        let (b0, b1) = scratch.split_at_mut(scratch.len() / 2);
        let mut bufs = [b0, b1];
        // The gradient with respect to layer l's pre-activation: grad_output first, then bufs[turn].
        let mut turn: Option<usize> = None;
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let [lower, upper] = &mut bufs;
            let (gz, next): (&[f32], &mut [f32]) = match turn {
                None => (grad_output, &mut **lower),
                Some(0) => (&**lower, &mut **upper),
                Some(_) => (&**upper, &mut **lower),
            };
            let gz = &gz[..rows * layer.outputs];
            let below = (l > 0).then(|| (l - 1) * rows * stride..l * rows * stride);
            let x = match below.clone() {
                None => Operand::F32(x0),
                Some(r) if bf16 => Operand::Bf16(output_of(&saved16[r], rows * self.width, keep)),
                Some(r) => Operand::F32(output_of(&saved[r], rows * self.width, keep)),
            };
            let (gw, gb) =
                grad[layer.offset..layer.offset + layer.n_params()].split_at_mut(layer.outputs * layer.inputs);
            let products = (gz, x, rows);
            let Some(state) = below else {
                let gi = grad_input.as_deref_mut().map(|gi| (gi, false));
                layer_backward(&layer, l, params, w16, products, (gw, accumulate), gi);
                break;
            };
            if l == self.depth() {
                add_rows(gz, gb, accumulate);
            }
            let gx = &mut next[..rows * layer.inputs];
            layer_backward(&layer, l, params, w16, products, (gw, accumulate), Some((&mut *gx, false)));
            let lower_layer = self.layers[l - 1];
            let bias_grad = &mut grad[lower_layer.bias_offset()..lower_layer.bias_offset() + lower_layer.outputs];
            // With `keep` the derivative f'(z) comes first in the state; without, the output (from which the
            // activation computes its derivative).
            let first = state.start..state.start + rows * self.width;
            if bf16 {
                with_widened(&saved16[first], |saved_state| {
                    backward_block_with_column_sums(self.activation, saved_state, keep, gx, bias_grad, accumulate)
                });
            } else {
                let saved_state = &saved[first];
                backward_block_with_column_sums(self.activation, saved_state, keep, gx, bias_grad, accumulate);
            }
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
    use crate::network::test_support::{check_blocked_matches_one_block, check_network};

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
    fn gradients_over_several_blocks_and_parts_match_finite_differences() {
        // 600 rows: blocks of 256, 256 and 88, split into parts across the pool's threads. Smooth activations only:
        // over this many rows a finite difference of a piecewise-linear one crosses kinks.
        for act in [Activation::Tanh, Activation::Gelu] {
            check_network(&Mlp::new(3, 2, 2, 5, act, Init::Default), 600);
        }
    }

    #[test]
    fn blocked_schedule_matches_one_block() {
        for act in [Activation::Tanh, Activation::LeakyRelu(0.01)] {
            check_blocked_matches_one_block(&Mlp::new(4, 3, 3, 40, act, Init::Default));
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
    #[test]
    fn bf16_outputs_and_gradients_stay_close_to_f32_over_several_blocks() {
        if let Err(e) = crate::onednn::library() {
            eprintln!("skipped: {e}");
            return;
        }
        let rows = 600;
        let mut net = Mlp::new(40, 20, 3, 48, Activation::Gelu, Init::Default);
        let mut params = vec![0.0; net.n_params()];
        net.init_params(&mut params, &mut crate::rng::seeded(7));
        let x: Vec<f32> = (0..rows * 40).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let g_out: Vec<f32> = (0..rows * 20).map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0).collect();
        let mut run = |precision: Precision| {
            net.set_precision(precision);
            let mut ws = vec![0.0; rows * net.workspace_per_sample()];
            let (mut out, mut grads, mut gx) = (vec![0.0; rows * 20], vec![0.0; params.len()], vec![0.0; rows * 40]);
            net.forward(&params, &x, &mut out, &mut ws);
            net.backward(&params, &x, &g_out, &mut ws, &mut grads, Some(&mut gx));
            (out, grads, gx)
        };
        let (out32, grads32, gx32) = run(Precision::F32);
        let (out16, grads16, gx16) = run(Precision::Bf16);
        let rel = |a: &[f32], b: &[f32]| {
            let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
            (d / n).sqrt()
        };
        // bf16 keeps 8 significant bits (relative rounding error up to 2^-8 = 0.4 %); errors of independent
        // roundings partly cancel in the sums, so the results stay within a few per mille to a per cent.
        for (name, e) in
            [("outputs", rel(&out16, &out32)), ("weights", rel(&grads16, &grads32)), ("input", rel(&gx16, &gx32))]
        {
            assert!(e < 2e-2, "{name}: bf16 differs from f32 by {e:.2e}");
            assert!(e > 1e-5, "{name}: bf16 equals f32 ({e:.2e}): the products did not run in bf16");
        }
    }
}
