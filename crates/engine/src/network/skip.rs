//! `skip`: the skip-connected MLP of the video's code (SkipConn). The first layer sees the input; every later
//! layer, and the output layer, sees `[current, previous, input]` (no `previous` yet for the second layer).

use super::dense::Dense;
use super::{Network, ParamTensor};
use crate::activation::Activation;
use crate::rng::Rng;
use crate::rows::{copy_into_columns, take_columns};

#[derive(Debug)]
pub struct Skip {
    /// `layers[0]` maps the input to the first hidden layer; `layers[depth]` is the output layer.
    layers: Vec<Dense>,
    activation: Activation,
    width: usize,
    inputs: usize,
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
        Skip { layers, activation, width, inputs }
    }

    fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    fn hidden_stride(&self) -> usize {
        self.width * if self.activation.needs_preactivation() { 2 } else { 1 }
    }

    /// Floats per sample of the concatenated inputs of layers 1..=depth.
    fn concat_per_sample(&self) -> usize {
        self.layers[1..].iter().map(|l| l.inputs).sum()
    }

    fn max_concat(&self) -> usize {
        self.layers.iter().map(|l| l.inputs).max().unwrap_or(0)
    }
}

/// Disjoint views of the workspace for one batch.
struct Parts<'a> {
    /// Per hidden layer: `[z | a]` when the activation needs z, else `[a]`.
    hidden: Vec<&'a mut [f32]>,
    /// Per layer 1..=depth: its concatenated input.
    concat: Vec<&'a mut [f32]>,
    /// Per hidden layer: gradient with respect to its output.
    grad_hidden: Vec<&'a mut [f32]>,
    grad_concat: &'a mut [f32],
    ones: &'a mut [f32],
}

impl Skip {
    fn split<'a>(&self, workspace: &'a mut [f32], batch: usize) -> Parts<'a> {
        let mut rest = workspace;
        let mut take = |n: usize| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            head
        };
        let hidden = (0..self.depth()).map(|_| take(batch * self.hidden_stride())).collect();
        let concat = self.layers[1..].iter().map(|l| take(batch * l.inputs)).collect();
        let grad_hidden = (0..self.depth()).map(|_| take(batch * self.width)).collect();
        let grad_concat = take(batch * self.max_concat());
        let ones = take(batch);
        Parts { hidden, concat, grad_hidden, grad_concat, ones }
    }

    fn output_of<'a>(&self, state: &'a [f32], batch: usize) -> &'a [f32] {
        if self.activation.needs_preactivation() {
            &state[batch * self.width..]
        } else {
            state
        }
    }
}

impl Network for Skip {
    fn describe(&self) -> String {
        format!("skip {}x{} {}", self.depth(), self.width, self.activation)
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
        self.depth() * (self.hidden_stride() + self.width) + self.concat_per_sample() + self.max_concat() + 1
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]) {
        let batch = input.len() / self.inputs;
        let keep_z = self.activation.needs_preactivation();
        let Parts { mut hidden, mut concat, .. } = self.split(workspace, batch);
        let w = self.width;
        for (l, layer) in self.layers.iter().enumerate() {
            let x: &[f32] = if l == 0 {
                input
            } else {
                let c = &mut *concat[l - 1];
                copy_into_columns(c, layer.inputs, 0, self.output_of(hidden[l - 1], batch), w);
                if l >= 2 {
                    copy_into_columns(c, layer.inputs, w, self.output_of(hidden[l - 2], batch), w);
                }
                copy_into_columns(c, layer.inputs, layer.inputs - self.inputs, input, self.inputs);
                concat[l - 1]
            };
            if l == self.depth() {
                layer.forward_linear(params, x, batch, output);
                Activation::Identity.forward_rows(layer.bias(params), output, &mut [], false);
            } else {
                let (z, a) = hidden[l].split_at_mut(batch * w);
                layer.forward_linear(params, x, batch, z);
                self.activation.forward_rows(layer.bias(params), z, a, keep_z);
            }
        }
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
        let batch = input.len() / self.inputs;
        let w = self.width;
        let Parts { hidden, concat, mut grad_hidden, grad_concat, ones } = self.split(workspace, batch);
        ones.fill(1.0);
        for g in grad_hidden.iter_mut() {
            g.fill(0.0);
        }
        let mut input_grad_written = false;
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            if l < self.depth() {
                // Every consumer of this layer's output (layers l+1 and l+2) is done: its gradient is complete.
                let state = &hidden[l];
                let (z, a) = if self.activation.needs_preactivation() {
                    state.split_at(batch * w)
                } else {
                    (&[][..], &state[..])
                };
                self.activation.backward_inplace(z, a, grad_hidden[l]);
            }
            let (below, at_and_above) = grad_hidden.split_at_mut(l.min(self.depth()));
            let gz: &[f32] = if l == self.depth() { grad_output } else { &*at_and_above[0] };
            let gc = &mut grad_concat[..batch * layer.inputs];
            let x: &[f32] = if l == 0 { input } else { concat[l - 1] };
            if l == 0 && grad_input.is_none() {
                layer.backward(params, x, gz, batch, Some(ones), grad_params, None);
                break;
            }
            layer.backward(params, x, gz, batch, Some(ones), grad_params, Some(&mut *gc));
            if l == 0 {
                if let Some(gi) = grad_input.as_deref_mut() {
                    take_columns(gi, self.inputs, gc, layer.inputs, 0, !input_grad_written);
                }
                break;
            }
            take_columns(below[l - 1], w, gc, layer.inputs, 0, false);
            if l >= 2 {
                take_columns(below[l - 2], w, gc, layer.inputs, w, false);
            }
            if let Some(gi) = grad_input.as_deref_mut() {
                take_columns(gi, self.inputs, gc, layer.inputs, layer.inputs - self.inputs, !input_grad_written);
                input_grad_written = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::test_support::check_network;

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
