//! `skip`: the skip-connected MLP of the video's code (SkipConn). The first layer sees the input; every later
//! layer, and the output layer, sees `[current, previous, input]` (no `previous` yet for the second layer).

use super::blocked::{backward_in_blocks, forward_in_blocks, layer_backward, with_bf16_weights, Bf16Weights, Block};
use super::dense::Dense;
use super::{Network, ParamTensor};
use crate::activation::{add_rows, backward_block_with_column_sums, Activation};
use crate::precision::{Operand, Precision};
use crate::rng::Rng;

#[derive(Debug)]
pub struct Skip {
    /// `layers[0]` maps the input to the first hidden layer; `layers[depth]` is the output layer.
    layers: Vec<Dense>,
    activation: Activation,
    width: usize,
    inputs: usize,
    precision: Precision,
}

impl Skip {
    pub fn new(inputs: usize, outputs: usize, depth: usize, width: usize, activation: Activation) -> Skip {
        let mut layers = Vec::with_capacity(depth + 1);
        let mut offset = 0;
        for l in 0..=depth {
            let fan_in = match l {
                0 => inputs,
                1 => width + inputs,
                _ => 2 * width + inputs,
            };
            let layer = Dense { inputs: fan_in, outputs: if l == depth { outputs } else { width }, offset };
            offset += layer.n_params();
            layers.push(layer);
        }
        Skip { layers, activation, width, inputs, precision: Precision::F32 }
    }

    fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    fn hidden_stride(&self) -> usize {
        self.width * if self.activation.needs_preactivation() { 2 } else { 1 }
    }

    fn max_concat(&self) -> usize {
        self.layers.iter().map(|l| l.inputs).max().unwrap_or(0)
    }
}

impl Skip {
    /// Saved floats per sample: every hidden layer's state, laid out block by block (`[block][layer][rows,
    /// hidden_stride]`) so that a block's state is one contiguous slice.
    fn saved_per_sample(&self) -> usize {
        self.depth() * self.hidden_stride()
    }

    /// Scratch floats per sample of the backward pass: the gradients with respect to the hidden outputs, a layer's
    /// concatenated input (rebuilt, not saved) and its gradient.
    fn scratch_per_sample(&self) -> usize {
        self.depth() * self.width + 2 * self.max_concat()
    }

    /// Layer `l`'s output within a block's saved state (`rows` rows).
    fn hidden<'a>(&self, saved: &'a [f32], l: usize, rows: usize) -> &'a [f32] {
        let stride = self.hidden_stride();
        let state = &saved[l * rows * stride..(l + 1) * rows * stride];
        if self.activation.needs_preactivation() {
            &state[rows * self.width..]
        } else {
            state
        }
    }

    /// Writes layer `l`'s input `[current, previous, input]` (no `previous` for layer 1) for a block of `rows`
    /// rows into `dst`. It is rebuilt in the backward pass rather than saved: a copy within L2 costs far less than
    /// the product that reads it.
    fn concat(&self, l: usize, x: &[f32], saved: &[f32], rows: usize, dst: &mut [f32]) {
        let (w, d, width) = (self.width, self.inputs, self.layers[l].inputs);
        let current = self.hidden(saved, l - 1, rows);
        let previous = (l >= 2).then(|| self.hidden(saved, l - 2, rows));
        for (i, row) in dst[..rows * width].chunks_exact_mut(width).enumerate() {
            row[..w].copy_from_slice(&current[i * w..(i + 1) * w]);
            if let Some(previous) = previous {
                row[w..2 * w].copy_from_slice(&previous[i * w..(i + 1) * w]);
            }
            row[width - d..].copy_from_slice(&x[i * d..(i + 1) * d]);
        }
    }
}

impl Network for Skip {
    fn describe(&self) -> String {
        format!("skip {}x{} {}", self.depth(), self.width, self.activation)
    }
    fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
    fn precision(&self) -> Precision {
        self.precision
    }
    fn input_dims(&self) -> usize {
        self.inputs
    }
    fn output_dims(&self) -> usize {
        self.layers[self.depth()].outputs
    }
    fn n_params(&self) -> usize {
        self.layers.iter().map(Dense::n_params).sum()
    }
    fn param_tensors(&self) -> Vec<ParamTensor> {
        Dense::param_tensors(&self.layers)
    }
    fn init_params(&self, params: &mut [f32], rng: &mut Rng) {
        for layer in &self.layers {
            layer.init_default(params, rng);
        }
    }
    fn flops_per_sample(&self) -> u64 {
        self.layers.iter().map(Dense::flops_per_sample).sum::<u64>() + (self.depth() * self.width) as u64
    }
    fn workspace_per_sample(&self) -> usize {
        self.saved_per_sample() + self.scratch_per_sample()
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]) {
        let (d_in, w) = (self.inputs, self.width);
        let keep = self.activation.needs_preactivation();
        let stride = self.hidden_stride();
        // The backward pass's scratch is free during the forward pass: its first floats hold the concatenation.
        forward_in_blocks(
            &self.layers,
            params,
            (input, output),
            workspace,
            (self.saved_per_sample(), self.scratch_per_sample()),
            self.precision,
            |weights, x, out, saved, concat| {
                let rows = x.len() / d_in;
                for (l, layer) in self.layers.iter().enumerate() {
                    if l > 0 {
                        self.concat(l, x, saved, rows, concat);
                    }
                    let layer_input: &[f32] = if l == 0 { x } else { &concat[..rows * layer.inputs] };
                    if l == self.depth() {
                        weights.product(l, layer_input, rows, out);
                        Activation::Identity.forward_block(layer.bias(params), out, &mut [], false);
                    } else {
                        let (z, a) = saved[l * rows * stride..(l + 1) * rows * stride].split_at_mut(rows * w);
                        weights.product(l, layer_input, rows, z);
                        // With `keep`, z keeps f'(z) for the backward pass and a the output.
                        self.activation.forward_block(layer.bias(params), z, a, keep);
                    }
                }
            },
        );
    }

    fn hidden_outputs(&self, params: &[f32], input: &[f32]) -> Vec<Vec<f32>> {
        let (rows, w, d) = (input.len() / self.inputs, self.width, self.inputs);
        let mut outputs: Vec<Vec<f32>> = Vec::with_capacity(self.depth());
        for (l, layer) in self.layers[..self.depth()].iter().enumerate() {
            if l == 0 {
                outputs.push(layer.activate(params, input, rows, self.activation));
                continue;
            }
            // The layer's input [current, previous, input], as the training path's `concat` lays it out.
            let previous = (l >= 2).then(|| &outputs[l - 2]);
            let mut x = Vec::with_capacity(rows * layer.inputs);
            for i in 0..rows {
                x.extend_from_slice(&outputs[l - 1][i * w..(i + 1) * w]);
                if let Some(p) = previous {
                    x.extend_from_slice(&p[i * w..(i + 1) * w]);
                }
                x.extend_from_slice(&input[i * d..(i + 1) * d]);
            }
            outputs.push(layer.activate(params, &x, rows, self.activation));
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
        let sizes = (self.saved_per_sample(), self.scratch_per_sample());
        with_bf16_weights(&self.layers, params, self.precision, |w16| {
            backward_in_blocks(&self.layers, (input, grad_output), workspace, sizes, grad_params, grad_input, |b| {
                self.backward_block(params, w16, b)
            })
        });
    }
}

impl Skip {
    /// The backward pass over one block on the calling thread.
    fn backward_block(&self, params: &[f32], w16: Option<Bf16Weights>, b: Block) {
        let Block { input: x, saved, grad_output, grad, accumulate, scratch, mut grad_input } = b;
        let (w, d) = (self.width, self.inputs);
        let rows = x.len() / d;
        let keep = self.activation.needs_preactivation();
        let stride = self.hidden_stride();
        let (grad_hidden, rest) = scratch.split_at_mut(rows * self.depth() * w);
        let (concat, grad_concat) = rest.split_at_mut(rows * self.max_concat());
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let (below, at) = grad_hidden.split_at_mut(l.min(self.depth()) * rows * w);
            let gz: &[f32] = if l == self.depth() {
                add_rows(grad_output, &mut grad[layer.bias_offset()..layer.bias_offset() + layer.outputs], accumulate);
                grad_output
            } else {
                // Both consumers of this layer's output (layers l+1 and l+2) are done: its gradient is complete.
                let gz = &mut at[..rows * w];
                let state = &saved[l * rows * stride..(l + 1) * rows * stride];
                let state = if keep { &state[..rows * w] } else { state };
                let bias_grad = &mut grad[layer.bias_offset()..layer.bias_offset() + layer.outputs];
                backward_block_with_column_sums(self.activation, state, keep, gz, bias_grad, accumulate);
                gz
            };
            let layer_input: &[f32] = if l == 0 {
                x
            } else {
                self.concat(l, x, saved, rows, concat);
                &concat[..rows * layer.inputs]
            };
            let gw = &mut grad[layer.offset..layer.offset + layer.outputs * layer.inputs];
            let products = (gz, Operand::F32(layer_input), rows);
            if l == 0 {
                // Every later layer (there is at least one) has written its share of the input gradient.
                let gi = grad_input.as_deref_mut().map(|gi| (gi, true));
                layer_backward(&layer, l, params, w16, products, (gw, accumulate), gi);
                break;
            }
            let width = layer.inputs;
            let gc = &mut grad_concat[..rows * width];
            layer_backward(&layer, l, params, w16, products, (gw, accumulate), Some((&mut *gc, false)));
            // h_{l-1} is read by layers l and l+1, h_{l-2} by layers l-1 and l: going down, l+1's share of h_{l-1}
            // and l's share of h_{l-2} come first.
            let current_first = l == self.depth();
            let (lower, current) = below.split_at_mut((l - 1) * rows * w);
            for (i, row) in gc.chunks_exact(width).enumerate() {
                let dst = &mut current[i * w..(i + 1) * w];
                if current_first {
                    dst.copy_from_slice(&row[..w]);
                } else {
                    add_rows(&row[..w], dst, true);
                }
                if l >= 2 {
                    lower[(l - 2) * rows * w + i * w..(l - 2) * rows * w + (i + 1) * w].copy_from_slice(&row[w..2 * w]);
                }
                if let Some(gi) = grad_input.as_deref_mut() {
                    let dst = &mut gi[i * d..(i + 1) * d];
                    if l == self.depth() {
                        dst.copy_from_slice(&row[width - d..]);
                    } else {
                        add_rows(&row[width - d..], dst, true);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::test_support::{check_blocked_matches_one_block, check_network};

    #[test]
    fn gradients_match_finite_differences() {
        for depth in 1..=4 {
            check_network(&Skip::new(2, 3, depth, 5, Activation::Tanh), 4);
            check_network(&Skip::new(2, 3, depth, 5, Activation::LeakyRelu(0.1)), 4);
        }
        check_network(&Skip::new(3, 1, 3, 4, Activation::Gelu), 5);
        check_network(&Skip::new(2, 2, 2, 4, Activation::Tanh), 3);
    }

    #[test]
    fn gradients_over_several_blocks_and_parts_match_finite_differences() {
        // 600 rows: blocks of 256, 256 and 88 in parts across the pool's threads; smooth activations only (see the
        // MLP's test of the same name).
        check_network(&Skip::new(3, 2, 3, 5, Activation::Tanh), 600);
        check_network(&Skip::new(2, 1, 2, 4, Activation::Gelu), 600);
    }

    #[test]
    fn blocked_schedule_matches_one_block() {
        for act in [Activation::Tanh, Activation::LeakyRelu(0.01), Activation::Gelu] {
            check_blocked_matches_one_block(&Skip::new(4, 3, 4, 24, act));
        }
    }

    #[test]
    fn layer_shapes_follow_the_video_code() {
        // SkipConn(hidden_size=100, num_hidden_layers=7, init_size=2): in 2->100, hidden 102->100 then 202->100,
        // out 202->1. Its parameter count is 2*100+100 + 102*100+100 + 6*(202*100+100) + 202+1.
        let net = Skip::new(2, 1, 8, 100, Activation::Gelu);
        let expected = 300 + 10_300 + 6 * 20_300 + 203;
        assert_eq!(net.n_params(), expected);
        assert_eq!(net.layers[1].inputs, 102);
        assert_eq!(net.layers[8].inputs, 202);
    }
}
