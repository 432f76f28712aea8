//! A model: input map -> encoding -> network -> output head, over one flat parameter vector laid out as
//! `[encoding parameters | network parameters]`.

use crate::encoding::{BuildContext, Encoding, EncodingConfig};
use crate::error::{EngineError, Result};
use crate::head::Head;
use crate::network::{Network, NetworkConfig, ParamTensor};
use crate::optimizer::ParamGroup;
use crate::rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The group of the encoding's hashed tables when they train by plain SGD ([`crate::trainer::TrainConfig::table_sgd`]).
pub const TABLES_GROUP: &str = "hashed_tables";

fn default_max_features() -> usize {
    1 << 20
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub encoding: EncodingConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub head: Head,
    /// The range each input dimension's domain is mapped to; by default the encoding's own (e.g. [-pi, pi] for
    /// Fourier features, [-1, 1] otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_range: Option<[f32; 2]>,
    /// Largest feature count a tensor-product encoding may produce.
    #[serde(default = "default_max_features")]
    pub max_features: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            encoding: EncodingConfig::default(),
            network: NetworkConfig::default(),
            head: Head::default(),
            input_range: None,
            max_features: default_max_features(),
        }
    }
}

impl ModelConfig {
    /// This config as a run on `points` training points in `dims` input dimensions builds it (`None`: points drawn
    /// without end, e.g. on the fly): a hash grid with `finest_from_data` gets its finest resolution from the
    /// points' spacing ([`crate::encoding::hash_grid::HashGridSpec::fitted_to_samples`]); all else is unchanged.
    pub fn fitted_to_samples(&self, dims: usize, points: Option<usize>) -> ModelConfig {
        let mut config = self.clone();
        if let EncodingConfig::HashGrid(spec) = &self.encoding {
            config.encoding = EncodingConfig::HashGrid(spec.fitted_to_samples(dims, points));
        }
        config
    }
}

/// Size and cost of one part, for introspection.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PartSummary {
    pub part: String,
    pub description: String,
    pub outputs: usize,
    pub params: usize,
    pub flops_per_sample: u64,
}

#[derive(Debug)]
pub struct Model {
    pub config: ModelConfig,
    pub domain: Vec<(f64, f64)>,
    pub seed: u64,
    /// Per dimension: `mapped = raw * scale + shift`, in f32 and (for f64 coordinates) in f64.
    scale: Vec<f32>,
    shift: Vec<f32>,
    scale64: Vec<f64>,
    shift64: Vec<f64>,
    pub(crate) encoding: Box<dyn Encoding>,
    pub(crate) network: Box<dyn Network>,
    pub head: Head,
    pub params: Vec<f32>,
}

/// One layer of the neurons' view: every unit's value at each of a set of points.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronLayer {
    /// `features: fourier(16)`, `layer 1`, ...
    pub name: String,
    pub units: usize,
    /// `[points, units]`, row-major.
    pub values: Vec<f32>,
}

/// Fills a chunk's encoded features: `(rows, mapped scratch, encoded)`.
type EncodeRows<'a> = dyn Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync + 'a;

/// Rows evaluated together by [`Model::predict`]: bounds its scratch memory whatever the number of points.
const PREDICT_CHUNK: usize = 2048;
const PREDICT_MIN_CHUNK: usize = 64;
const PREDICT_SCRATCH_FLOATS: usize = 1 << 22;

thread_local! {
    /// Per-thread buffers of [`Model::predict`], grown to the largest chunk seen and then reused.
    static PREDICT_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Model {
    /// Builds a model for data with the given input `domain` (one (lo, hi) per dimension) and output width, with
    /// parameters initialised from `seed`.
    pub fn new(config: ModelConfig, domain: &[(f64, f64)], output_dims: usize, seed: u64) -> Result<Model> {
        if domain.is_empty() {
            return Err(EngineError::config("data", "has no input dimensions"));
        }
        if output_dims == 0 {
            return Err(EngineError::config("data", "has no output dimensions"));
        }
        for (d, &(lo, hi)) in domain.iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(EngineError::config(
                    format!("domain dimension {d}"),
                    format!("needs lo < hi, got [{lo}, {hi}]"),
                ));
            }
        }
        let (r0, r1) = match config.input_range {
            Some([a, b]) => (a, b),
            None => config.encoding.default_input_range(),
        };
        if !(r0.is_finite() && r1.is_finite() && r0 < r1) {
            return Err(EngineError::config("input_range", format!("needs lo < hi, got [{r0}, {r1}]")));
        }
        let scale: Vec<f32> = domain.iter().map(|(lo, hi)| ((r1 - r0) as f64 / (hi - lo)) as f32).collect();
        let shift: Vec<f32> =
            domain.iter().zip(&scale).map(|((lo, _), s)| (r0 as f64 - lo * *s as f64) as f32).collect();
        let scale64: Vec<f64> = domain.iter().map(|(lo, hi)| (r1 - r0) as f64 / (hi - lo)).collect();
        let shift64: Vec<f64> = domain.iter().zip(&scale64).map(|((lo, _), s)| r0 as f64 - lo * s).collect();
        let ctx = BuildContext { input_dims: domain.len(), seed, max_features: config.max_features };
        let encoding = config.encoding.build(&ctx)?;
        if encoding.output_dims() > config.max_features {
            return Err(EngineError::config(
                "encoding",
                format!(
                    "{} gives {} features, more than max_features {} (set model.max_features to allow more)",
                    encoding.describe(),
                    encoding.output_dims(),
                    config.max_features
                ),
            ));
        }
        let network = config.network.build(encoding.output_dims(), output_dims)?;
        let n_params = encoding.n_params() as f64 + network.n_params() as f64;
        // Parameters, gradients and the two Adam moments, all f32.
        crate::limits::check_memory(
            &format!("a model of {n_params} parameters (with its gradients and optimizer state)"),
            n_params * 4.0 * 4.0,
        )?;
        if config.head == Head::Softmax && output_dims < 2 {
            return Err(EngineError::config("head", "softmax needs at least 2 outputs (classes)"));
        }
        let mut params = crate::memory::zeroed(encoding.n_params() + network.n_params());
        let (enc_p, net_p) = params.split_at_mut(encoding.n_params());
        encoding.init_params(enc_p, &mut rng::derived(seed, "encoding init"));
        network.init_params(net_p, &mut rng::derived(seed, "network init"));
        let head = config.head;
        let domain = domain.to_vec();
        Ok(Model { config, domain, seed, scale, shift, scale64, shift64, encoding, network, head, params })
    }

    pub fn input_dims(&self) -> usize {
        self.domain.len()
    }
    /// Runs the network's dense products, in training and in [`Model::predict`], in `precision`. Through
    /// [`crate::Trainer::set_precision`], which also resizes the training buffers (their size depends on it).
    pub(crate) fn set_precision(&mut self, precision: crate::precision::Precision) {
        self.network.set_precision(precision);
    }
    /// See [`Encoding::enable_sparse_gradients`]; through the trainer, which then keeps the gradient zero outside
    /// the touched rows.
    pub(crate) fn enable_sparse_encoding_gradients(&mut self) -> bool {
        self.encoding.n_params() > 0 && self.encoding.enable_sparse_gradients()
    }
    pub fn precision(&self) -> crate::precision::Precision {
        self.network.precision()
    }
    pub fn output_dims(&self) -> usize {
        self.network.output_dims()
    }
    pub fn encoded_dims(&self) -> usize {
        self.encoding.output_dims()
    }
    pub fn n_params(&self) -> usize {
        self.params.len()
    }
    pub fn encoding(&self) -> &dyn Encoding {
        self.encoding.as_ref()
    }
    pub fn network(&self) -> &dyn Network {
        self.network.as_ref()
    }
    pub fn encoding_range(&self) -> Range<usize> {
        0..self.encoding.n_params()
    }
    pub fn network_range(&self) -> Range<usize> {
        self.encoding.n_params()..self.params.len()
    }

    /// Parameters and forward FLOPs per sample of each part.
    pub fn summary(&self) -> Vec<PartSummary> {
        vec![
            PartSummary {
                part: "encoding".into(),
                description: self.encoding.describe(),
                outputs: self.encoding.output_dims(),
                params: self.encoding.n_params(),
                flops_per_sample: self.encoding.flops_per_sample(),
            },
            PartSummary {
                part: "network".into(),
                description: self.network.describe(),
                outputs: self.network.output_dims(),
                params: self.network.n_params(),
                flops_per_sample: self.network.flops_per_sample(),
            },
            PartSummary {
                part: "head".into(),
                description: self.head.name().into(),
                outputs: self.output_dims(),
                params: 0,
                flops_per_sample: 4 * self.output_dims() as u64,
            },
        ]
    }

    pub fn flops_per_sample(&self) -> u64 {
        self.summary().iter().map(|p| p.flops_per_sample).sum()
    }

    /// Named tensors of the whole parameter vector (`encoding.*`, `network.*`), offsets into [`Model::params`].
    pub fn param_tensors(&self) -> Vec<ParamTensor> {
        let mut t = Vec::new();
        if self.encoding.n_params() > 0 {
            t.push(ParamTensor { name: "encoding.params".into(), offset: 0, shape: vec![self.encoding.n_params()] });
        }
        let base = self.encoding.n_params();
        t.extend(self.network.param_tensors().into_iter().map(|p| ParamTensor {
            name: format!("network.{}", p.name),
            offset: base + p.offset,
            shape: p.shape,
        }));
        t
    }

    /// The optimizer's groups: the encoding's trainable tables (if any) learn at `encoding_lr_scale` times the rate.
    /// With `hashed_apart`, the encoding's hashed tables ([`Encoding::hashed_params`]) form a group of their own,
    /// [`TABLES_GROUP`], trained by plain SGD at a rate the trainer sets each step.
    pub fn param_groups(&self, encoding_lr_scale: f32, hashed_apart: bool) -> Vec<ParamGroup> {
        let mut groups = Vec::new();
        let encoding = self.encoding_range();
        // Hashed tables end the encoding's parameters; none apart is an empty range at its end.
        let hashed = Some(self.encoding.hashed_params())
            .filter(|h| hashed_apart && !h.is_empty())
            .unwrap_or(encoding.end..encoding.end);
        if hashed.start > encoding.start {
            groups.push(ParamGroup::new("encoding", encoding.start..hashed.start, encoding_lr_scale));
        }
        if !hashed.is_empty() {
            debug_assert_eq!(hashed.end, encoding.end, "hashed tables end the encoding's parameters");
            groups.push(ParamGroup { plain_sgd: true, ..ParamGroup::new(TABLES_GROUP, hashed, 0.0) });
        }
        groups.push(ParamGroup::new("network", self.network_range(), 1.0));
        groups
    }

    /// Maps raw domain coordinates to the encoding's input range.
    pub fn map_input(&self, raw: &[f32], mapped: &mut [f32]) {
        let d = self.input_dims();
        for (m, r) in mapped.chunks_exact_mut(d).zip(raw.chunks_exact(d)) {
            for i in 0..d {
                m[i] = r[i] * self.scale[i] + self.shift[i];
            }
        }
    }

    /// [`Model::map_input`] in f64, for coordinates finer than f32 resolves.
    pub fn map_input_f64(&self, raw: &[f64], mapped: &mut [f64]) {
        let d = self.input_dims();
        for (m, r) in mapped.chunks_exact_mut(d).zip(raw.chunks_exact(d)) {
            for i in 0..d {
                m[i] = r[i] * self.scale64[i] + self.shift64[i];
            }
        }
    }

    /// Predictions (after the head) for any number of points, in parallel chunks; keeps no training buffers.
    pub fn predict(&self, inputs: &[f32], out: &mut [f32]) -> Result<()> {
        let d = self.input_dims();
        self.predict_rows(inputs.len(), out, &|rows, mapped, encoded| {
            let x = &inputs[rows.start * d..rows.end * d];
            self.map_input(x, mapped);
            self.encoding.forward(&self.params[..self.encoding.n_params()], mapped, encoded);
        })
    }

    /// [`Model::predict`] from f64 coordinates: mapped in f64 and read as such by encodings that resolve finer than
    /// f32 (the hash grid), so that a deep zoom (a window of width 1e-4 and less) shows no f32 banding.
    pub fn predict_f64(&self, inputs: &[f64], out: &mut [f32]) -> Result<()> {
        let d = self.input_dims();
        self.predict_rows(inputs.len(), out, &|rows, _, encoded| {
            let x = &inputs[rows.start * d..rows.end * d];
            let mut mapped = vec![0.0f64; x.len()];
            self.map_input_f64(x, &mut mapped);
            self.encoding.forward_f64(&self.params[..self.encoding.n_params()], &mapped, encoded);
        })
    }

    /// What every neuron computes at these points (raw domain coordinates): the encoding's features (unless the
    /// encoding is the identity, whose features are the coordinates themselves), then each hidden layer's outputs.
    /// For drawing, not training: single-threaded products, a new buffer per layer.
    pub fn neurons(&self, inputs: &[f32]) -> Result<Vec<NeuronLayer>> {
        let d = self.input_dims();
        if !inputs.len().is_multiple_of(d) {
            return Err(EngineError::Shape(format!("neurons: {} input values for {d} dimensions", inputs.len())));
        }
        let mut mapped = vec![0.0; inputs.len()];
        self.map_input(inputs, &mut mapped);
        let (enc_params, net_params) = self.params.split_at(self.encoding.n_params());
        let mut features = vec![0.0; inputs.len() / d * self.encoded_dims()];
        self.encoding.forward(enc_params, &mapped, &mut features);
        let hidden = self.network.hidden_outputs(net_params, &features);
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        if !matches!(self.config.encoding, EncodingConfig::Identity(_)) {
            let name = format!("features: {}", self.encoding.describe());
            layers.push(NeuronLayer { name, units: self.encoded_dims(), values: features });
        }
        for (l, values) in hidden.into_iter().enumerate() {
            let units = values.len() / (inputs.len() / d).max(1);
            layers.push(NeuronLayer { name: format!("layer {}", l + 1), units, values });
        }
        Ok(layers)
    }

    /// The body of both predictions: `encode(rows, mapped scratch, encoded)` fills a chunk's features.
    fn predict_rows(&self, input_len: usize, out: &mut [f32], encode: &EncodeRows) -> Result<()> {
        let (d, o) = (self.input_dims(), self.output_dims());
        if !input_len.is_multiple_of(d) || out.len() != input_len / d * o {
            return Err(EngineError::Shape(format!(
                "predict: {input_len} input values for {d} dimensions and {} output values for {o} outputs",
                out.len()
            )));
        }
        let e = self.encoded_dims();
        let per_row = d + e + o + self.network.workspace_per_sample();
        // Wide encodings (100k Fourier features of MNIST) get shorter chunks, so scratch stays near 16 MB a thread.
        let chunk = (PREDICT_SCRATCH_FLOATS / per_row).clamp(PREDICT_MIN_CHUNK, PREDICT_CHUNK);
        out.par_chunks_mut(chunk * o).enumerate().for_each(|(c, y)| {
            let rows = y.len() / o;
            crate::linalg::with_scratch(&PREDICT_SCRATCH, |scratch| {
                // Renders call this for every frame: reusing each worker's buffers avoids faulting in fresh pages.
                if scratch.len() < rows * per_row {
                    scratch.resize(rows * per_row, 0.0);
                }
                let (mapped, rest) = scratch.split_at_mut(rows * d);
                let (encoded, rest) = rest.split_at_mut(rows * e);
                let (raw, rest) = rest.split_at_mut(rows * o);
                let ws = &mut rest[..rows * self.network.workspace_per_sample()];
                encode(c * chunk..c * chunk + rows, mapped, encoded);
                self.network.forward(&self.params[self.encoding.n_params()..], encoded, raw, ws);
                self.head.forward(raw, y, o);
            });
        });
        Ok(())
    }
}
