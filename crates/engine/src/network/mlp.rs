//! `mlp`, `siren` and `linear`: a stack of dense layers with one activation between them.

use super::dense::Dense;
use super::{Network, ParamTensor};
use crate::activation::{add_rows, backward_block_with_column_sums, Activation};
use crate::linalg::{matmul, transpose, with_scratch, Op};
use crate::rng::Rng;
use rayon::prelude::*;

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
        // Saved hidden states and two gradient buffers used in turn.
        self.saved_per_sample() + 2 * self.max_width()
    }

    fn forward(&self, params: &[f32], input: &[f32], output: &mut [f32], workspace: &mut [f32]) {
        let (d_in, d_out) = (self.input_dims(), self.output_dims());
        let last = self.layers[self.depth()];
        if self.depth() == 0 {
            last.forward_linear(params, input, input.len() / d_in, output);
            Activation::Identity.forward_rows(last.bias(params), output, &mut [], false);
            return;
        }
        let per_row = self.saved_per_sample();
        let batch = input.len() / d_in;
        let keep = self.activation.needs_preactivation();
        let saved = &mut workspace[..batch * per_row];
        // gemm packs a transposed right-hand side on every call, i.e. once per block; one transposed copy of the
        // weights per forward pass is cheaper once there are a few blocks.
        let block = block_rows(batch);
        let transposed = block < batch;
        with_scratch(&WEIGHTS_T, |weights_t| {
            if transposed {
                let total: usize = self.layers.iter().map(|l| l.inputs * l.outputs).sum();
                if weights_t.len() < total {
                    weights_t.resize(total, 0.0);
                }
                let mut rest = &mut weights_t[..];
                for layer in &self.layers {
                    let (wt, tail) = std::mem::take(&mut rest).split_at_mut(layer.inputs * layer.outputs);
                    transpose(layer.weight(params), layer.outputs, layer.inputs, wt);
                    rest = tail;
                }
            }
            let weights_t = &weights_t[..];
            let linear = |l: usize, x: &[f32], rows: usize, z: &mut [f32]| {
                let layer = &self.layers[l];
                if transposed {
                    let offset: usize = self.layers[..l].iter().map(|l| l.inputs * l.outputs).sum();
                    let wt = &weights_t[offset..offset + layer.inputs * layer.outputs];
                    matmul(rows, layer.outputs, layer.inputs, x, Op::N, wt, Op::N, z, false);
                } else {
                    layer.forward_linear(params, x, rows, z);
                }
            };
            input
                .par_chunks(block * d_in)
                .zip(output.par_chunks_mut(block * d_out))
                .zip(saved.par_chunks_mut(block * per_row))
                .for_each(|((x, out), mut saved)| {
                    let rows = x.len() / d_in;
                    let mut prev = x;
                    for (l, layer) in self.layers[..self.depth()].iter().enumerate() {
                        let (state, rest) = std::mem::take(&mut saved).split_at_mut(rows * self.hidden_stride());
                        saved = rest;
                        let (z, a) = state.split_at_mut(rows * self.width);
                        linear(l, prev, rows, z);
                        // With `keep`, z keeps f'(z) for the backward pass, which needs nothing else of it.
                        self.activation.forward_block(layer.bias(params), z, a, keep);
                        prev = if keep { a } else { z };
                    }
                    linear(self.depth(), prev, rows, out);
                    Activation::Identity.forward_block(last.bias(params), out, &mut [], false);
                });
        });
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
        let (d_in, d_out) = (self.input_dims(), self.output_dims());
        let batch = input.len() / d_in;
        if self.depth() == 0 {
            let layer = self.layers[0];
            layer.backward(params, input, grad_output, batch, None, grad_params, grad_input);
            add_rows(grad_output, &mut grad_params[layer.bias_offset()..layer.bias_offset() + d_out], false);
            return;
        }
        let per_row = self.saved_per_sample();
        let (saved, rest) = workspace.split_at_mut(batch * per_row);
        let grad_bufs = &mut rest[..batch * 2 * self.max_width()];
        let block = block_rows(batch);
        let blocks = batch.div_ceil(block);
        // Parts, not blocks, are what run in parallel: each part sums its blocks' parameter gradients in its own
        // buffer, and the buffers are added in part order, so the result depends only on the number of threads.
        // Inside a Rayon task the batch is one block (see `block_rows`), hence one part.
        let parts = rayon::current_num_threads().clamp(1, blocks.max(1));
        let part_rows = blocks.div_ceil(parts) * block;
        let parts = batch.div_ceil(part_rows);
        let n = self.n_params();
        with_scratch(&GRAD_PARTIALS, |partials| {
            if partials.len() < (parts - 1) * n {
                partials.resize((parts - 1) * n, 0.0);
            }
            let destinations =
                rayon::iter::once(&mut *grad_params).chain(partials[..(parts - 1) * n].par_chunks_mut(n));
            let work = destinations
                .zip(saved.par_chunks(part_rows * per_row))
                .zip(input.par_chunks(part_rows * d_in))
                .zip(grad_output.par_chunks(part_rows * d_out))
                .zip(grad_bufs.par_chunks_mut(part_rows * 2 * self.max_width()));
            match grad_input {
                Some(gi) => {
                    work.zip(gi.par_chunks_mut(part_rows * d_in)).for_each(|(((((dst, st), x), go), bufs), gi)| {
                        self.backward_part(params, block, x, st, go, bufs, dst, Some(gi))
                    })
                }
                None => work.for_each(|((((dst, st), x), go), bufs)| {
                    self.backward_part(params, block, x, st, go, bufs, dst, None)
                }),
            }
            let partials = &partials[..(parts - 1) * n];
            grad_params.par_chunks_mut(SUM_CHUNK).enumerate().for_each(|(i, g)| {
                for p in 0..parts - 1 {
                    let src = &partials[p * n + i * SUM_CHUNK..p * n + i * SUM_CHUNK + g.len()];
                    add_rows(src, g, true);
                }
            });
        });
    }
}

/// Rows per block of the fused schedule. A block goes through every layer before the next block starts, so its
/// activations (256 rows x 256 floats = 256 KiB per layer) are still in the core's L2 cache when the bias and
/// activation pass reads them after their product, and on the way back when the weight gradient and the activation
/// backward read the gradient just computed.
const BLOCK_ROWS: usize = 256;
/// Parameters per task when the parts' gradients are added together.
const SUM_CHUNK: usize = 1 << 14;

/// Rows per block for a batch (see [`BLOCK_ROWS`]). Inside a Rayon task (chunked inference) the pool is already
/// busy with other chunks, so the chunk is one block: no parallel blocks, and no transposed weights, which would be
/// copied once per chunk. Forward and backward of one batch are called from the same place and so agree on it.
fn block_rows(batch: usize) -> usize {
    if rayon::current_thread_index().is_some() {
        batch.max(1)
    } else {
        BLOCK_ROWS
    }
}

thread_local! {
    /// Transposed weights, `[in, out]` per layer, for the forward pass: grown once, then reused.
    static WEIGHTS_T: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Parameter gradients of the parts after the first: grown once, then reused.
    static GRAD_PARTIALS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Mlp {
    /// Saved floats per sample: every hidden layer's state. The forward pass lays them out block by block
    /// (`[block][layer][rows, hidden_stride]`) so that a block's state is one contiguous slice.
    fn saved_per_sample(&self) -> usize {
        self.depth() * self.hidden_stride()
    }

    /// The backward pass over one part's rows (consecutive blocks of `block` rows, in order) on the calling thread: writes the
    /// parameter gradient of those rows into `grad` and their input gradient into `grad_input`.
    #[allow(clippy::too_many_arguments)]
    fn backward_part(
        &self,
        params: &[f32],
        block: usize,
        input: &[f32],
        saved: &[f32],
        grad_output: &[f32],
        bufs: &mut [f32],
        grad: &mut [f32],
        mut grad_input: Option<&mut [f32]>,
    ) {
        let (d_in, d_out) = (self.input_dims(), self.output_dims());
        let (per_row, stride) = (self.saved_per_sample(), self.hidden_stride());
        let keep = self.activation.needs_preactivation();
        let (b0, b1) = bufs.split_at_mut(bufs.len() / 2);
        let part_rows = input.len() / d_in;
        for r0 in (0..part_rows).step_by(block) {
            let rows = block.min(part_rows - r0);
            let accumulate = r0 > 0;
            let x0 = &input[r0 * d_in..(r0 + rows) * d_in];
            let saved = &saved[r0 * per_row..(r0 + rows) * per_row];
            let mut bufs = [&mut *b0, &mut *b1];
            // The gradient with respect to layer l's pre-activation: grad_output first, then bufs[turn].
            let mut turn: Option<usize> = None;
            for l in (0..self.layers.len()).rev() {
                let layer = self.layers[l];
                let [lower, upper] = &mut bufs;
                let (gz, next): (&[f32], &mut [f32]) = match turn {
                    None => (&grad_output[r0 * d_out..(r0 + rows) * d_out], &mut **lower),
                    Some(0) => (&**lower, &mut **upper),
                    Some(_) => (&**upper, &mut **lower),
                };
                let gz = &gz[..rows * layer.outputs];
                let below = (l > 0).then(|| &saved[(l - 1) * rows * stride..l * rows * stride]);
                let x = match below {
                    None => x0,
                    Some(state) if keep => &state[rows * self.width..],
                    Some(state) => state,
                };
                let (gw, gb) =
                    grad[layer.offset..layer.offset + layer.n_params()].split_at_mut(layer.outputs * layer.inputs);
                matmul(layer.outputs, layer.inputs, rows, gz, Op::T, x, Op::N, gw, accumulate);
                let w = layer.weight(params);
                let Some(state) = below else {
                    if let Some(gi) = grad_input.as_deref_mut() {
                        let gi = &mut gi[r0 * d_in..(r0 + rows) * d_in];
                        matmul(rows, layer.inputs, layer.outputs, gz, Op::N, w, Op::N, gi, false);
                    }
                    break;
                };
                if l == self.depth() {
                    add_rows(gz, gb, accumulate);
                }
                let gx = &mut next[..rows * layer.inputs];
                matmul(rows, layer.inputs, layer.outputs, gz, Op::N, w, Op::N, gx, false);
                let lower_layer = self.layers[l - 1];
                let bias_grad = &mut grad[lower_layer.bias_offset()..lower_layer.bias_offset() + lower_layer.outputs];
                let saved_state = if keep { &state[..rows * self.width] } else { state };
                backward_block_with_column_sums(self.activation, saved_state, keep, gx, bias_grad, accumulate);
                turn = Some(match turn {
                    None | Some(1) => 0,
                    Some(_) => 1,
                });
            }
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
    fn gradients_over_several_blocks_and_parts_match_finite_differences() {
        // 600 rows: blocks of 256, 256 and 88, split into parts across the pool's threads. Smooth activations only:
        // over this many rows a finite difference of a piecewise-linear one crosses kinks.
        for act in [Activation::Tanh, Activation::Gelu] {
            check_network(&Mlp::new(3, 2, 2, 5, act, Init::Default), 600);
        }
    }

    #[test]
    fn blocked_schedule_matches_one_block() {
        // Outside a Rayon task the batch runs as parallel blocks with transposed weights; inside one (as in chunked
        // inference) as a single block. Both must compute the same function and gradients.
        for act in [Activation::Tanh, Activation::LeakyRelu(0.01)] {
            let net = Mlp::new(4, 3, 3, 40, act, Init::Default);
            let batch = 1000;
            let mut rng = crate::rng::seeded(3);
            let mut params = vec![0.0; net.n_params()];
            net.init_params(&mut params, &mut rng);
            let input: Vec<f32> = (0..batch * 4).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
            let grad_out: Vec<f32> = (0..batch * 3).map(|i| ((i * 13) % 17) as f32 / 8.0 - 1.0).collect();
            let run = || {
                let mut out = vec![0.0; batch * 3];
                let mut ws = vec![0.0; batch * net.workspace_per_sample()];
                let mut gp = vec![0.0; net.n_params()];
                let mut gi = vec![0.0; batch * 4];
                net.forward(&params, &input, &mut out, &mut ws);
                net.backward(&params, &input, &grad_out, &mut ws, &mut gp, Some(&mut gi));
                (out, gp, gi)
            };
            let blocked = run();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let single = pool.install(|| {
                assert_eq!(block_rows(batch), batch);
                run()
            });
            assert_eq!(block_rows(batch), BLOCK_ROWS);
            for (name, a, b) in
                [("output", &blocked.0, &single.0), ("params", &blocked.1, &single.1), ("input", &blocked.2, &single.2)]
            {
                for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{name}[{i}]: blocked {x} vs one block {y}");
                }
            }
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
