//! A fully connected layer `y = x W^T + b` over the model's flat parameter vector. Weights are stored `[out, in]`
//! row-major followed by the bias, the layout of PyTorch's `nn.Linear`.

use crate::linalg::{matmul, Op};
use crate::rng::Rng;
use rand::Rng as _;

#[derive(Clone, Copy, Debug)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    /// Where this layer's weights start in the network's parameter slice.
    pub offset: usize,
}

impl Dense {
    pub fn n_params(&self) -> usize {
        self.outputs * self.inputs + self.outputs
    }

    pub fn weight<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.offset..self.offset + self.outputs * self.inputs]
    }

    /// Where the bias starts in the parameter slice.
    pub fn bias_offset(&self) -> usize {
        self.offset + self.outputs * self.inputs
    }

    pub fn bias<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        let start = self.offset + self.outputs * self.inputs;
        &params[start..start + self.outputs]
    }

    /// PyTorch's default `nn.Linear` initialisation: weights and bias U(-1/sqrt(in), 1/sqrt(in)).
    pub fn init_default(&self, params: &mut [f32], rng: &mut Rng) {
        let bound = 1.0 / (self.inputs as f32).sqrt();
        for p in &mut params[self.offset..self.offset + self.n_params()] {
            *p = rng.gen_range(-bound..bound);
        }
    }

    /// Weights U(-w_bound, w_bound), bias with PyTorch's default bound.
    pub fn init_uniform(&self, params: &mut [f32], w_bound: f32, rng: &mut Rng) {
        let n_w = self.outputs * self.inputs;
        for p in &mut params[self.offset..self.offset + n_w] {
            *p = rng.gen_range(-w_bound..w_bound);
        }
        let bound = 1.0 / (self.inputs as f32).sqrt();
        for p in &mut params[self.offset + n_w..self.offset + self.n_params()] {
            *p = rng.gen_range(-bound..bound);
        }
    }

    /// `z = x W^T` without the bias: the bias is added by the fused activation pass that follows.
    pub fn forward_linear(&self, params: &[f32], x: &[f32], batch: usize, z: &mut [f32]) {
        matmul(batch, self.outputs, self.inputs, x, Op::N, self.weight(params), Op::T, z, false);
    }

    /// `a = f(x W^T + b)` into a new buffer, row by row: the plain path for drawing neurons, not for training.
    pub fn activate(
        &self,
        params: &[f32],
        x: &[f32],
        rows: usize,
        activation: crate::activation::Activation,
    ) -> Vec<f32> {
        let mut z = vec![0.0; rows * self.outputs];
        self.forward_linear(params, x, rows, &mut z);
        for row in z.chunks_exact_mut(self.outputs) {
            for (v, b) in row.iter_mut().zip(self.bias(params)) {
                *v = activation.apply(*v + b);
            }
        }
        z
    }

    /// Given the gradient `gz` with respect to this layer's (pre-activation) output, writes the weight and bias
    /// gradients into `grad_params` (the same layout as `params`) and, when asked, `gx = gz W`. With `ones` as `None`
    /// the caller has already written the bias gradient (fused into the activation's backward pass).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        gz: &[f32],
        batch: usize,
        ones: Option<&[f32]>,
        grad_params: &mut [f32],
        gx: Option<&mut [f32]>,
    ) {
        let n_w = self.outputs * self.inputs;
        let (gw, rest) = grad_params[self.offset..].split_at_mut(n_w);
        matmul(self.outputs, self.inputs, batch, gz, Op::T, x, Op::N, gw, false);
        // The bias gradient is the column sum of gz, done as ones[1, batch] * gz to reuse the tuned kernel.
        if let Some(ones) = ones {
            matmul(1, self.outputs, batch, &ones[..batch], Op::N, gz, Op::N, &mut rest[..self.outputs], false);
        }
        if let Some(gx) = gx {
            matmul(batch, self.inputs, self.outputs, gz, Op::N, self.weight(params), Op::N, gx, false);
        }
    }

    /// `layers.{i}.weight` and `layers.{i}.bias` of a stack of layers, named as PyTorch's `nn.Sequential` would.
    pub fn param_tensors(layers: &[Dense]) -> Vec<super::ParamTensor> {
        layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    super::ParamTensor {
                        name: format!("layers.{i}.weight"),
                        offset: l.offset,
                        shape: vec![l.outputs, l.inputs],
                    },
                    super::ParamTensor {
                        name: format!("layers.{i}.bias"),
                        offset: l.bias_offset(),
                        shape: vec![l.outputs],
                    },
                ]
            })
            .collect()
    }

    pub fn flops_per_sample(&self) -> u64 {
        2 * (self.inputs * self.outputs) as u64 + self.outputs as u64
    }
}
