//! The schedule the dense networks (`mlp`, `siren`, `linear`, `skip`) share: the batch is cut into blocks of
//! [`BLOCK_ROWS`] rows, and each block goes through every layer before the next block starts, so that a block's
//! activations are still in the core's L2 cache when the next pass over them comes (bias + activation after a
//! product, the weight gradient and the activation backward on the way back). Blocks run in parallel.
//!
//! The backward gives each thread one run of consecutive blocks (a part) whose parameter gradients it sums in its
//! own buffer; the buffers are added in part order, so a result depends only on the number of threads.

use super::dense::Dense;
use crate::activation::add_rows;
use crate::linalg::{matmul, transpose, with_scratch, Op};
use crate::precision::{convert, matmul_bf16, widen, worth_bf16, Operand, Precision};
use rayon::prelude::*;

/// Rows per block: 256 rows x 256 floats = 256 KiB per layer, which stays in L2 between the passes over it.
pub(super) const BLOCK_ROWS: usize = 256;
/// Parameters per task when the parts' gradients are added together.
const SUM_CHUNK: usize = 1 << 14;

/// Rows per block for a batch (see [`BLOCK_ROWS`]). Inside a Rayon task (chunked inference) the pool is already
/// busy with other chunks, so the chunk is one block: no parallel blocks, and no transposed weights, which would be
/// copied once per chunk. Forward and backward of one batch are called from the same place and so agree on it.
pub(super) fn block_rows(batch: usize) -> usize {
    if rayon::current_thread_index().is_some() {
        batch.max(1)
    } else {
        BLOCK_ROWS
    }
}

thread_local! {
    /// Transposed weights, `[in, out]` per layer, for the forward pass: grown once, then reused.
    static WEIGHTS_T: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The weights rounded to bf16, `[out, in]` per layer, for a pass in bf16: grown once, then reused.
    static WEIGHTS_BF16: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    /// bf16 values widened to f32 for an f32 product or pass: grown once, then reused.
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A block's output gradient rounded to bf16 for its layer's two backward products: grown once, then reused.
    static GRAD_BF16: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Parameter gradients of the parts after the first: grown once, then reused.
    static GRAD_PARTIALS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The layers' forward products `z = x W^T`. gemm packs a transposed right-hand side on every call, i.e. once per
/// block; with several blocks, one transposed copy of the weights per forward pass is cheaper. In bf16 the weights
/// are rounded once per pass instead, and oneDNN takes them transposed as they are.
pub(super) struct ForwardWeights<'a> {
    layers: &'a [Dense],
    params: &'a [f32],
    /// Every layer's `W^T`, `[in, out]`, in layer order; `None` for a single block.
    transposed: Option<&'a [f32]>,
    /// Every layer's `W` rounded to bf16, `[out, in]`, in layer order; `None` in f32.
    bf16: Option<Bf16Weights<'a>>,
}

impl ForwardWeights<'_> {
    /// `z[rows, out] = x[rows, in] W_l^T` (no bias: the activation pass adds it).
    pub(super) fn product(&self, l: usize, x: &[f32], rows: usize, z: &mut [f32]) {
        self.product_of(l, Operand::F32(x), rows, z)
    }

    /// [`ForwardWeights::product`] of an input that may be bf16 already (a hidden state saved in bf16): in bf16
    /// where the layer is worth it, else in f32 (a bf16 input widened first).
    pub(super) fn product_of(&self, l: usize, x: Operand, rows: usize, z: &mut [f32]) {
        let layer = &self.layers[l];
        match (x, self.bf16.as_ref().and_then(|w| w.layer(l, rows))) {
            (x, Some(w16)) => {
                matmul_bf16(rows, layer.outputs, layer.inputs, x, Op::N, Operand::Bf16(w16), Op::T, z, false)
            }
            (Operand::F32(x), None) => self.product_f32(l, x, rows, z),
            (Operand::Bf16(x16), None) => {
                with_widened(&x16[..rows * layer.inputs], |x| self.product_f32(l, x, rows, z))
            }
        }
    }

    fn product_f32(&self, l: usize, x: &[f32], rows: usize, z: &mut [f32]) {
        let layer = &self.layers[l];
        match self.transposed {
            Some(all) => {
                let offset: usize = self.layers[..l].iter().map(|l| l.inputs * l.outputs).sum();
                let wt = &all[offset..offset + layer.inputs * layer.outputs];
                matmul(rows, layer.outputs, layer.inputs, x, Op::N, wt, Op::N, z, false);
            }
            None => layer.forward_linear(self.params, x, rows, z),
        }
    }
}

/// Runs `f` with `values` widened to f32 in a buffer of the thread's, reused between calls.
pub(super) fn with_widened<R>(values: &[u16], f: impl FnOnce(&[f32]) -> R) -> R {
    with_scratch(&WIDENED, |buf| {
        if buf.len() < values.len() {
            buf.resize(values.len(), 0.0);
        }
        widen(values, &mut buf[..values.len()]);
        f(&buf[..values.len()])
    })
}

/// Every layer's weights `[out, in]` rounded to bf16, in layer order.
#[derive(Clone, Copy)]
pub(super) struct Bf16Weights<'a> {
    layers: &'a [Dense],
    all: &'a [u16],
}

impl<'a> Bf16Weights<'a> {
    /// Layer `l`'s rounded weights when its products with `rows` rows are worth running in bf16.
    pub(super) fn layer(&self, l: usize, rows: usize) -> Option<&'a [u16]> {
        let layer = &self.layers[l];
        if !worth_bf16(rows, layer.outputs, layer.inputs) {
            return None;
        }
        let offset: usize = self.layers[..l].iter().map(|l| l.inputs * l.outputs).sum();
        Some(&self.all[offset..offset + layer.inputs * layer.outputs])
    }
}

/// Runs `f` with the layers' weights rounded to bf16 in `precision` bf16 (`None` in f32), made once on the calling
/// thread into a buffer reused between passes.
pub(super) fn with_bf16_weights<R>(
    layers: &[Dense],
    params: &[f32],
    precision: Precision,
    f: impl FnOnce(Option<Bf16Weights>) -> R,
) -> R {
    if precision != Precision::Bf16 {
        return f(None);
    }
    with_scratch(&WEIGHTS_BF16, |all| {
        let total: usize = layers.iter().map(|l| l.inputs * l.outputs).sum();
        if all.len() < total {
            all.resize(total, 0);
        }
        let mut rest = &mut all[..];
        for layer in layers {
            let (w16, tail) = std::mem::take(&mut rest).split_at_mut(layer.inputs * layer.outputs);
            convert(layer.weight(params), w16);
            rest = tail;
        }
        f(Some(Bf16Weights { layers, all: &all[..total] }))
    })
}

/// A layer's products in the backward pass of one block: `gw (+)= gz^T x` (adding when `accumulate`) and, when
/// asked, `gx (+)= gz W` (adding when its flag says so). With `weights` (a pass in bf16) and a layer worth it, `gz` is
/// rounded to bf16 once for both products.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_backward(
    layer: &Dense,
    l: usize,
    params: &[f32],
    weights: Option<Bf16Weights>,
    (gz, x, rows): (&[f32], Operand, usize),
    (gw, accumulate): (&mut [f32], bool),
    gx: Option<(&mut [f32], bool)>,
) {
    let (outputs, inputs) = (layer.outputs, layer.inputs);
    let Some(w16) = weights.and_then(|w| w.layer(l, rows)) else {
        let mut weight_gradient = |x: &[f32]| matmul(outputs, inputs, rows, gz, Op::T, x, Op::N, gw, accumulate);
        match x {
            Operand::F32(x) => weight_gradient(x),
            Operand::Bf16(x16) => with_widened(&x16[..rows * inputs], weight_gradient),
        }
        if let Some((gx, add)) = gx {
            matmul(rows, inputs, outputs, gz, Op::N, layer.weight(params), Op::N, gx, add);
        }
        return;
    };
    with_scratch(&GRAD_BF16, |g16| {
        if g16.len() < rows * outputs {
            g16.resize(rows * outputs, 0);
        }
        let g16 = &mut g16[..rows * outputs];
        convert(&gz[..rows * outputs], g16);
        matmul_bf16(outputs, inputs, rows, Operand::Bf16(g16), Op::T, x, Op::N, gw, accumulate);
        if let Some((gx, add)) = gx {
            matmul_bf16(rows, inputs, outputs, Operand::Bf16(g16), Op::N, Operand::Bf16(w16), Op::N, gx, add);
        }
    });
}

/// Runs `f` with the forward products of `layers` for a batch cut into blocks of `block` rows.
fn with_forward_weights<R>(
    layers: &[Dense],
    params: &[f32],
    (batch, block): (usize, usize),
    precision: Precision,
    f: impl FnOnce(&ForwardWeights) -> R,
) -> R {
    if precision == Precision::Bf16 {
        return with_bf16_weights(layers, params, precision, |bf16| {
            f(&ForwardWeights { layers, params, transposed: None, bf16 })
        });
    }
    if block >= batch {
        return f(&ForwardWeights { layers, params, transposed: None, bf16: None });
    }
    with_scratch(&WEIGHTS_T, |weights_t| {
        let total: usize = layers.iter().map(|l| l.inputs * l.outputs).sum();
        if weights_t.len() < total {
            weights_t.resize(total, 0.0);
        }
        let mut rest = &mut weights_t[..];
        for layer in layers {
            let (wt, tail) = std::mem::take(&mut rest).split_at_mut(layer.inputs * layer.outputs);
            transpose(layer.weight(params), layer.outputs, layer.inputs, wt);
            rest = tail;
        }
        f(&ForwardWeights { layers, params, transposed: Some(&weights_t[..total]), bf16: None })
    })
}

/// The forward pass in blocks: runs `block_forward(weights, x, out, saved, scratch)` on every block of `block`
/// rows in parallel, with the block's rows of `input`, `output` and of the workspace's `saved` and `scratch` parts
/// (`saved_per_row` and `scratch_per_row` floats a row, neither 0). `layers` go from the input to the output.
pub(super) fn forward_in_blocks(
    layers: &[Dense],
    params: &[f32],
    (input, output): (&[f32], &mut [f32]),
    workspace: &mut [f32],
    (saved_per_row, scratch_per_row): (usize, usize),
    precision: Precision,
    block_forward: impl Fn(&ForwardWeights, &[f32], &mut [f32], &mut [f32], &mut [f32]) + Sync + Send,
) {
    let (input_dims, output_dims) = (layers[0].inputs, layers[layers.len() - 1].outputs);
    let batch = input.len() / input_dims;
    let (saved, scratch) = workspace.split_at_mut(batch * saved_per_row);
    let block = block_rows(batch);
    with_forward_weights(layers, params, (batch, block), precision, |weights| {
        input
            .par_chunks(block * input_dims)
            .zip(output.par_chunks_mut(block * output_dims))
            .zip(saved.par_chunks_mut(block * saved_per_row))
            .zip(scratch[..batch * scratch_per_row].par_chunks_mut(block * scratch_per_row))
            .for_each(|(((x, out), saved), scratch)| block_forward(weights, x, out, saved, scratch));
    });
}

/// What the backward pass of one block gets: its rows of the input, the saved state and the output gradient, the
/// parameter-gradient buffer of its part (overwrite it when `accumulate` is false, the part's first block, else
/// add to it), and its rows of the scratch buffer and of the input gradient.
pub(super) struct Block<'a> {
    pub input: &'a [f32],
    pub saved: &'a [f32],
    pub grad_output: &'a [f32],
    pub grad: &'a mut [f32],
    pub accumulate: bool,
    pub scratch: &'a mut [f32],
    pub grad_input: Option<&'a mut [f32]>,
}

/// The backward pass in blocks, after [`forward_in_blocks`] with the same workspace layout: cuts the batch into one
/// run of consecutive blocks per thread (a part), runs `block_backward` on each part's blocks in order, parts in
/// parallel, and adds the parts' parameter gradients into `grad_params` in part order.
pub(super) fn backward_in_blocks(
    layers: &[Dense],
    (input, grad_output): (&[f32], &[f32]),
    workspace: &mut [f32],
    (saved_per_row, scratch_per_row): (usize, usize),
    grad_params: &mut [f32],
    grad_input: Option<&mut [f32]>,
    block_backward: impl Fn(Block) + Sync + Send,
) {
    let (input_dims, output_dims) = (layers[0].inputs, layers[layers.len() - 1].outputs);
    let batch = input.len() / input_dims;
    let (saved, scratch) = workspace.split_at_mut(batch * saved_per_row);
    let block = block_rows(batch);
    let blocks = batch.div_ceil(block);
    // Inside a Rayon task the batch is one block (see `block_rows`), hence one part.
    let parts = rayon::current_num_threads().clamp(1, blocks.max(1));
    let part_rows = blocks.div_ceil(parts) * block;
    let parts = batch.div_ceil(part_rows);
    let n = grad_params.len();
    let run_part = |i: usize, grad: &mut [f32], scratch: &mut [f32], mut grad_input: Option<&mut [f32]>| {
        let part = i * part_rows..((i + 1) * part_rows).min(batch);
        for r0 in part.clone().step_by(block) {
            let (rows, local) = (block.min(part.end - r0), r0 - part.start);
            let r1 = r0 + rows;
            block_backward(Block {
                input: &input[r0 * input_dims..r1 * input_dims],
                saved: &saved[r0 * saved_per_row..r1 * saved_per_row],
                grad_output: &grad_output[r0 * output_dims..r1 * output_dims],
                grad: &mut *grad,
                accumulate: local > 0,
                scratch: &mut scratch[..rows * scratch_per_row],
                grad_input: grad_input
                    .as_deref_mut()
                    .map(|gi| &mut gi[local * input_dims..(local + rows) * input_dims]),
            });
        }
    };
    with_scratch(&GRAD_PARTIALS, |partials| {
        if partials.len() < (parts - 1) * n {
            partials.resize((parts - 1) * n, 0.0);
        }
        let destinations = rayon::iter::once(&mut *grad_params).chain(partials[..(parts - 1) * n].par_chunks_mut(n));
        let work = destinations.zip(scratch[..batch * scratch_per_row].par_chunks_mut(part_rows * scratch_per_row));
        match grad_input {
            Some(gi) => work
                .zip(gi.par_chunks_mut(part_rows * input_dims))
                .enumerate()
                .for_each(|(i, ((grad, scratch), gi))| run_part(i, grad, scratch, Some(gi))),
            None => work.enumerate().for_each(|(i, (grad, scratch))| run_part(i, grad, scratch, None)),
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
