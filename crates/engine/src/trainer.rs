//! The training step: forward, loss, backward and optimizer update over buffers allocated once.

use crate::encoding::Mapped;
use crate::error::{EngineError, Result};
use crate::loss::Loss;
use crate::model::Model;
use crate::optimizer::{
    clip_grad_norm, marked_sum_of_squares, moment_params, scale_marked, sum_of_squares_with, Optimizer,
    OptimizerConfig, ParamGroup, SparseRows,
};
use crate::precision::{PrecisionSetting, Resolved};
use crate::rng::{self, Rng};
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};

fn default_lr() -> f32 {
    1e-3
}
fn default_batch() -> usize {
    4096
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "default_lr")]
    pub lr: f32,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default)]
    pub loss: Loss,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value before each update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f32>,
    /// Learning-rate multiplier of trainable encodings (hash grids); default 10 for those, as their tables see few
    /// samples per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_lr_scale: Option<f32>,
    /// Precision of the dense layers' matrix products: `auto` (bf16 where the CPU has bf16 dot products and oneDNN
    /// is installed), `f32` or `bf16`. Weights, optimizer state, encodings, head and loss are f32 either way.
    #[serde(default)]
    pub precision: PrecisionSetting,
    /// Update only the table rows a batch touched ("lazy" Adam) for encodings with sparse gradients (hash grids),
    /// so that a step's cost follows the batch, not the table size. Untouched rows keep their moments; with dense
    /// updates (the default) Adam's momentum keeps moving them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lazy_tables: bool,
    /// Trains the encoding's hashed tables (a hash grid's levels too fine to index densely) by plain SGD on the
    /// batch's summed loss (over its rows and outputs; over its rows for cross-entropy), at this rate times the
    /// schedule's factor (`lr_t / lr`), instead of by the optimizer. A sample then moves the rows it reaches in
    /// proportion to its own error, however rarely a row is reached and whatever the batch size, where Adam moves a
    /// row reached once by a step of about the learning rate, and its momentum keeps it moving for steps after. The
    /// tables keep no moments (8 bytes a parameter less with Adam) and their update reads and writes half the
    /// memory. Dense levels and the network keep the optimizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_sgd: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: default_lr(),
            batch: default_batch(),
            loss: Loss::default(),
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            clip_grad_norm: None,
            encoding_lr_scale: None,
            precision: PrecisionSetting::default(),
            lazy_tables: false,
            table_sgd: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(EngineError::config("lr", format!("must be a positive number, got {}", self.lr)));
        }
        if self.batch == 0 {
            return Err(EngineError::config("batch", "must be at least 1, got 0"));
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(EngineError::config("clip_grad_norm", format!("must be a positive number, got {c}")));
            }
        }
        if let Some(s) = self.encoding_lr_scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(EngineError::config("encoding_lr_scale", format!("must be a positive number, got {s}")));
            }
        }
        if let Some(r) = self.table_sgd {
            if !(r.is_finite() && r > 0.0) {
                return Err(EngineError::config("table_sgd", format!("must be a positive number, got {r}")));
            }
            if self.lazy_tables {
                return Err(EngineError::config(
                    "table_sgd",
                    "cannot go with lazy_tables (lazy Adam for the same tables); set one of the two",
                ));
            }
        }
        self.loss.validate()?;
        self.optimizer.validate()?;
        self.schedule.validate()
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub loss: f64,
    pub lr: f32,
    pub grad_norm: f64,
}

/// A batch's raw coordinates, in f32 or f64.
#[derive(Clone, Copy)]
enum Coordinates<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Coordinates<'_> {
    fn len(&self) -> usize {
        match self {
            Coordinates::F32(x) => x.len(),
            Coordinates::F64(x) => x.len(),
        }
    }
}

/// Training buffers sized for one batch; allocated once, reused every step.
#[derive(Debug, Default)]
struct Buffers {
    /// The mapped f64 coordinates of [`Trainer::compute_gradients_f64`], allocated at its first call.
    mapped64: Vec<f64>,
    mapped: Vec<f32>,
    encoded: Vec<f32>,
    workspace: Vec<f32>,
    raw: Vec<f32>,
    pred: Vec<f32>,
    grad: Vec<f32>,
    grad_encoded: Vec<f32>,
    /// The gradient norm's per-chunk sums ([`sum_of_squares_with`]).
    norm_partials: Vec<f64>,
}

impl Buffers {
    /// Floats per sample of each buffer, in the order of [`Buffers::all_mut`]: what `resize` allocates and what the
    /// memory check counts before it.
    fn floats_per_sample(m: &Model) -> [usize; 7] {
        let grad_encoded = if m.encoding.n_params() > 0 { m.encoded_dims() } else { 0 };
        let (o, e) = (m.output_dims(), m.encoded_dims());
        [m.input_dims(), e, m.network.workspace_per_sample(), o, o, o, grad_encoded]
    }

    fn all_mut(&mut self) -> [&mut Vec<f32>; 7] {
        let Buffers { mapped64: _, norm_partials: _, mapped, encoded, workspace, raw, pred, grad, grad_encoded } = self;
        [mapped, encoded, workspace, raw, pred, grad, grad_encoded]
    }
}

#[derive(Debug)]
pub struct Trainer {
    pub(crate) model: Model,
    pub(crate) config: TrainConfig,
    pub(crate) optimizer: Optimizer,
    /// Steps completed.
    pub(crate) step: u64,
    /// The data sampler's random stream: part of the trainer so that a checkpoint resumes it exactly.
    pub(crate) rng: Rng,
    groups: Vec<ParamGroup>,
    grads: Vec<f32>,
    buffers: Buffers,
    precision: Resolved,
    /// Whether the encoding's gradient is sparse (see [`TrainConfig::lazy_tables`]).
    sparse_encoding: bool,
    /// Fraction of a time budget elapsed, for schedules that follow it; set by the run loop.
    budget_done: Option<f64>,
    /// Rows in the last batch given to [`Trainer::compute_gradients`].
    last_rows: usize,
    /// Whether the backward steps the hashed tables itself ([`crate::encoding::Encoding::backward_stepping_hashed`]): with
    /// `table_sgd` and no clipping.
    tables_stepped_in_backward: bool,
}

impl Trainer {
    pub fn new(mut model: Model, config: TrainConfig) -> Result<Trainer> {
        config.validate()?;
        if config.loss.takes_logits() != (model.head == crate::head::Head::Softmax) {
            return Err(EngineError::config(
                "loss",
                "cross_entropy goes with the softmax head and the softmax head with cross_entropy",
            ));
        }
        let per_sample: usize = Buffers::floats_per_sample(&model).iter().sum();
        crate::limits::check_memory(
            &format!("batch {} ({per_sample} floats per sample) of training buffers", config.batch),
            config.batch as f64 * per_sample as f64 * 4.0,
        )?;
        let enc_scale = config.encoding_lr_scale.unwrap_or(10.0);
        let mut groups = model.param_groups(enc_scale, config.table_sgd.is_some());
        // Without clipping (whose norm needs every gradient first) the hashed tables take their SGD step in the
        // backward, and are then no group of the optimizer's.
        let tables_stepped_in_backward = config.table_sgd.is_some() && config.clip_grad_norm.is_none();
        let unwritten_grads = if tables_stepped_in_backward { model.encoding().hashed_params() } else { 0..0 };
        if tables_stepped_in_backward {
            groups.retain(|g| !g.plain_sgd);
        }
        let n = model.n_params();
        let optimizer = Optimizer::new(config.optimizer, moment_params(&groups));
        let rng = rng::derived(model.seed, "data");
        let precision = config.precision.resolve();
        model.set_precision(precision.precision);
        let sparse_encoding = config.lazy_tables && model.enable_sparse_encoding_gradients();
        let mut t = Trainer {
            model,
            config,
            optimizer,
            step: 0,
            rng,
            groups,
            grads: crate::memory::zeroed_except(n, unwritten_grads),
            buffers: Buffers::default(),
            precision,
            sparse_encoding,
            budget_done: None,
            last_rows: 0,
            tables_stepped_in_backward,
        };
        t.resize(t.config.batch);
        Ok(t)
    }

    fn resize(&mut self, batch: usize) {
        let sizes = Buffers::floats_per_sample(&self.model);
        for (buffer, per_sample) in self.buffers.all_mut().into_iter().zip(sizes) {
            buffer.resize(batch * per_sample, 0.0);
        }
    }

    /// Steps completed.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// The model being trained: its parts, predictions and current parameters.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The trained model, for inference once training is over.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// The current parameters, laid out as [`Model::param_tensors`] names them.
    pub fn params(&self) -> &[f32] {
        &self.model.params
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The data sampler's random stream, which a checkpoint saves so that a resumed run draws the same batches.
    pub fn data_rng(&self) -> &Rng {
        &self.rng
    }

    /// The data sampler's random stream, for drawing the next batch.
    pub fn data_rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The precision the products run in, why, and a notice when bf16 was asked for and is not available.
    pub fn precision(&self) -> &Resolved {
        &self.precision
    }

    /// Switches the products to `setting` from the next step on (e.g. a run resumed in the other precision). The
    /// weights and optimizer state are f32 in either precision, so nothing else changes.
    pub fn set_precision(&mut self, setting: PrecisionSetting) {
        self.config.precision = setting;
        self.precision = setting.resolve();
        self.model.set_precision(self.precision.precision);
        // The saved activations' size depends on the precision.
        self.resize(self.config.batch);
    }

    pub fn lr(&self) -> f32 {
        self.config.schedule.lr_at(self.config.lr, self.step, self.budget_done)
    }

    /// Tells the trainer how much of a time budget has elapsed (0 to 1), for a cosine schedule without a step
    /// total: it then follows the clock.
    pub fn set_budget_done(&mut self, fraction: f64) {
        self.budget_done = Some(fraction);
    }

    /// The predictions (after the head; the logits with a loss that takes them) for the batch last given to
    /// [`Trainer::compute_gradients`], `[rows, output_dims]`: what a sampler that looks at the error needs.
    pub fn last_predictions(&self) -> &[f32] {
        let o = self.model.output_dims();
        let rows = self.last_rows;
        if self.config.loss.takes_logits() {
            &self.buffers.raw[..rows * o]
        } else {
            &self.buffers.pred[..rows * o]
        }
    }

    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// Forward and backward on one batch: fills the gradients and returns the loss, without updating, except for
    /// the hashed tables with `table_sgd` and no clipping: those take their step here, unless the loss is not
    /// finite, and their gradient stays zero (see [`crate::encoding::Encoding::backward_stepping_hashed`]).
    /// `inputs` are raw domain coordinates `[rows, input_dims]`; `rows` may be at most the configured batch.
    pub fn compute_gradients(&mut self, inputs: &[f32], targets: &[f32]) -> Result<f64> {
        self.forward_backward(Coordinates::F32(inputs), targets)
    }

    /// [`Trainer::compute_gradients`] from f64 coordinates, mapped in f64 and read as such by encodings that
    /// resolve finer than f32 (see [`crate::encoding::Encoding::forward_f64`]).
    pub fn compute_gradients_f64(&mut self, inputs: &[f64], targets: &[f32]) -> Result<f64> {
        self.forward_backward(Coordinates::F64(inputs), targets)
    }

    fn forward_backward(&mut self, inputs: Coordinates, targets: &[f32]) -> Result<f64> {
        let (d, o) = (self.model.input_dims(), self.model.output_dims());
        let len = inputs.len();
        let rows = len / d;
        if len != rows * d || targets.len() != rows * o || rows == 0 || rows > self.config.batch {
            return Err(EngineError::Shape(format!(
                "batch of {len} inputs and {} targets for {d} inputs and {o} outputs per sample, at most {} samples",
                targets.len(),
                self.config.batch
            )));
        }
        self.last_rows = rows;
        let table_rate = self.table_rate(rows);
        let m = &self.model;
        let b = &mut self.buffers;
        let e = m.encoded_dims();
        let encoded = &mut b.encoded[..rows * e];
        let ws = &mut b.workspace[..rows * m.network.workspace_per_sample()];
        let (raw, pred, grad) = (&mut b.raw[..rows * o], &mut b.pred[..rows * o], &mut b.grad[..rows * o]);
        let (enc_p, net_p) = m.params.split_at(m.encoding.n_params());
        let (enc_g, net_g) = self.grads.split_at_mut(m.encoding.n_params());
        if b.mapped64.len() < rows * d && matches!(inputs, Coordinates::F64(_)) {
            b.mapped64.resize(self.config.batch * d, 0.0);
        }
        let (mapped, mapped64) = (&mut b.mapped[..rows * d], &mut b.mapped64[..]);
        match inputs {
            Coordinates::F32(x) => {
                m.map_input(x, mapped);
                m.encoding.forward(enc_p, mapped, encoded);
            }
            Coordinates::F64(x) => {
                m.map_input_f64(x, &mut mapped64[..rows * d]);
                m.encoding.forward_f64(enc_p, &mapped64[..rows * d], encoded);
            }
        }
        m.network.forward(net_p, encoded, raw, ws);
        let loss = if self.config.loss.takes_logits() {
            self.config.loss.value_and_grad(raw, targets, grad, o)
        } else {
            m.head.forward(raw, pred, o);
            let loss = self.config.loss.value_and_grad(pred, targets, grad, o);
            m.head.backward(pred, grad, o);
            loss
        };
        if m.encoding.n_params() > 0 {
            let ge = &mut b.grad_encoded[..rows * e];
            m.network.backward(net_p, encoded, grad, ws, net_g, Some(&mut *ge));
            let mapped = match inputs {
                Coordinates::F32(_) => Mapped::F32(mapped),
                Coordinates::F64(_) => Mapped::F64(&mapped64[..rows * d]),
            };
            match (self.tables_stepped_in_backward, mapped) {
                // A non-finite loss must leave every parameter as it was (see `step`), the tables too.
                (true, _) if !loss.is_finite() => {}
                (true, mapped) => {
                    let model = &mut self.model;
                    let tables = &mut model.params[..model.encoding.n_params()];
                    model.encoding.backward_stepping_hashed(tables, mapped, ge, enc_g, table_rate);
                }
                (false, Mapped::F32(x)) => m.encoding.backward(enc_p, x, ge, enc_g, None),
                (false, Mapped::F64(x)) => m.encoding.backward_f64(enc_p, x, ge, enc_g, None),
            }
        } else {
            m.network.backward(net_p, encoded, grad, ws, net_g, None);
        }
        Ok(loss)
    }

    /// One training step on a batch. A non-finite loss stops before the update, leaving the parameters as they were,
    /// and reports the step and learning rate. So does a non-finite gradient, except that without clipping (whose
    /// norm must come first) the parameters whose chunk of gradients was finite have been updated: the norm is then
    /// found in the update's own pass (see [`Optimizer::step_measured`]), and the caller stops either way.
    pub fn step(&mut self, inputs: &[f32], targets: &[f32]) -> Result<StepStats> {
        let loss = self.compute_gradients(inputs, targets)?;
        self.apply_gradients(loss)
    }

    /// The second half of [`Trainer::step`]: after [`Trainer::compute_gradients`] returned `loss`, checks for
    /// divergence, clips and updates. Split out so that a caller can act between the two (e.g. checkpoint
    /// parameters only once their loss is known to be finite).
    pub fn apply_gradients(&mut self, loss: f64) -> Result<StepStats> {
        if self.sparse_encoding {
            let result = self.apply_sparse(loss);
            self.zero_touched_gradients();
            return result;
        }
        let lr = self.lr();
        let diverged = EngineError::Diverged { step: self.step, lr, loss };
        if !loss.is_finite() {
            return Err(diverged);
        }
        if self.config.table_sgd.is_some() {
            // The group's rate follows the batch (the last one may be short), so it is set here, not at build.
            let scale = self.table_lr_scale(self.last_rows);
            self.groups.iter_mut().filter(|g| g.plain_sgd).for_each(|g| g.lr_scale = scale);
        }
        let groups = &self.groups;
        let norm = match self.config.clip_grad_norm {
            Some(max) => {
                let norm = sum_of_squares_with(&self.grads, &mut self.buffers.norm_partials).sqrt();
                if norm.is_finite() {
                    clip_grad_norm(&mut self.grads, norm, max);
                    self.optimizer.step(&mut self.model.params, &self.grads, lr, groups);
                }
                norm
            }
            // Without clipping the norm is found in the update's own pass over the gradients.
            None => self.optimizer.step_measured(&mut self.model.params, &self.grads, lr, groups).sqrt(),
        };
        if !norm.is_finite() {
            return Err(diverged);
        }
        self.step += 1;
        Ok(StepStats { loss, lr, grad_norm: norm })
    }

    /// [`Trainer::apply_gradients`] while `look` reads this batch's predictions ([`Trainer::last_predictions`]),
    /// the two side by side on the thread pool: a caller's serial work on the predictions (a sampler's feedback)
    /// then overlaps the update instead of leaving a core idle before it.
    pub fn apply_gradients_beside<R: Send>(
        &mut self,
        loss: f64,
        look: impl FnOnce(&[f32]) -> R + Send,
    ) -> (R, Result<StepStats>) {
        let logits = self.config.loss.takes_logits();
        let n = self.last_rows * self.model.output_dims();
        // Moved out (not copied) for the update's exclusive borrow of the trainer, which never reads it.
        let held = std::mem::take(if logits { &mut self.buffers.raw } else { &mut self.buffers.pred });
        let result = rayon::join(|| look(&held[..n]), || self.apply_gradients(loss));
        *(if logits { &mut self.buffers.raw } else { &mut self.buffers.pred }) = held;
        result
    }

    /// [`Trainer::apply_gradients`] with a sparse encoding gradient: the norm, the clipping and the update visit
    /// the network's parameters and the touched table rows only.
    fn apply_sparse(&mut self, loss: f64) -> Result<StepStats> {
        let lr = self.lr();
        let (encoding, params) = (&*self.model.encoding, &mut self.model.params);
        let (grads, optimizer, groups) = (&mut self.grads, &mut self.optimizer, &self.groups);
        let partials = &mut self.buffers.norm_partials;
        let clip = self.config.clip_grad_norm;
        let width = encoding.sparse_row_width();
        let mut result = Err(EngineError::Diverged { step: self.step, lr, loss });
        encoding.visit_touched_rows(&mut |sets| {
            let (enc_g, net_g) = grads.split_at_mut(encoding.n_params());
            let norm = (sum_of_squares_with(net_g, partials) + marked_sum_of_squares(enc_g, width, sets)).sqrt();
            if !loss.is_finite() || !norm.is_finite() {
                return;
            }
            if let Some(max) = clip {
                let coef = max as f64 / (norm + 1e-6);
                if coef < 1.0 {
                    clip_grad_norm(net_g, norm, max);
                    scale_marked(enc_g, width, sets, coef as f32);
                }
            }
            let sparse = SparseRows { group: crate::encoding::hash_grid::HashGrid::PARAM_GROUP, width, sets };
            optimizer.step_with_sparse(params, grads, lr, groups, Some(&sparse));
            result = Ok(StepStats { loss, lr, grad_norm: norm });
        });
        if result.is_ok() {
            self.step += 1;
        }
        result
    }

    /// The hashed tables' learning rate as a multiple of the scheduled one, for a batch of `rows` (0 without
    /// `table_sgd`): the rate per term of the summed loss, times the terms, over the base rate.
    fn table_lr_scale(&self, rows: usize) -> f32 {
        let Some(rate) = self.config.table_sgd else { return 0.0 };
        rate * self.config.loss.terms(rows, self.model.output_dims()) as f32 / self.config.lr
    }

    /// The hashed tables' SGD step per unit of gradient of the mean loss, as the optimizer would take it for their
    /// group (`lr * lr_scale`), for a step in the backward.
    fn table_rate(&self, rows: usize) -> f32 {
        self.lr() * self.table_lr_scale(rows)
    }

    /// Zeroes the table rows the last backward touched, the only non-zero ones of a sparse encoding gradient.
    fn zero_touched_gradients(&mut self) {
        let encoding = &*self.model.encoding;
        let width = encoding.sparse_row_width();
        let grads = &mut self.grads[..encoding.n_params()];
        encoding.visit_touched_rows(&mut |sets| scale_marked(grads, width, sets, 0.0));
        encoding.clear_touched_rows();
    }
}
