//! Optimizers over the model's flat parameter vector, with parameter groups that scale the learning rate.

use crate::error::{EngineError, Result};
use crate::parts::{self, Form, Part};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;

fn beta1() -> f32 {
    0.9
}
fn beta2() -> f32 {
    0.999
}
fn adam_eps() -> f32 {
    1e-8
}
fn adamw_decay() -> f32 {
    0.01
}
fn momentum() -> f32 {
    0.9
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    Adam {
        #[serde(default = "beta1")]
        beta1: f32,
        #[serde(default = "beta2")]
        beta2: f32,
        #[serde(default = "adam_eps")]
        eps: f32,
    },
    /// Adam with decoupled weight decay (Loshchilov and Hutter).
    #[serde(rename = "adamw")]
    AdamW {
        #[serde(default = "beta1")]
        beta1: f32,
        #[serde(default = "beta2")]
        beta2: f32,
        #[serde(default = "adam_eps")]
        eps: f32,
        #[serde(default = "adamw_decay")]
        weight_decay: f32,
    },
    /// SGD with (heavy-ball) momentum, as PyTorch's `SGD` without dampening.
    Sgd {
        #[serde(default = "momentum")]
        momentum: f32,
        #[serde(default)]
        weight_decay: f32,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam { beta1: beta1(), beta2: beta2(), eps: adam_eps() }
    }
}

impl Part for OptimizerConfig {
    const KIND: &'static str = "optimizer";
    const FORMS: &'static [Form] = &[
        Form::new("adam", "adam", &["adam"], ""),
        Form::new("adamw", "adamw[:WEIGHT_DECAY]", &["adamw", "adamw:0.01"], "decoupled weight decay"),
        Form::new("sgd", "sgd[:MOMENTUM]", &["sgd:0.9", "sgd:0"], "heavy-ball momentum, default 0.9"),
    ];

    fn from_form(form: &Form, args: &[&str]) -> Result<Self> {
        let num = |what: &str| -> Result<Option<f32>> {
            match args {
                [] => Ok(None),
                [a] => a
                    .parse()
                    .map(Some)
                    .map_err(|_| EngineError::config("optimizer", format!("{what} must be a number, got '{a}'"))),
                _ => Err(EngineError::config(
                    format!("optimizer {}", form.name),
                    format!("takes one argument ({}), got {}", form.usage, args.len()),
                )),
            }
        };
        let cfg = match form.name {
            "adam" => {
                parts::no_args::<Self>(form, args)?;
                OptimizerConfig::default()
            }
            "adamw" => OptimizerConfig::AdamW {
                beta1: beta1(),
                beta2: beta2(),
                eps: adam_eps(),
                weight_decay: num("weight decay")?.unwrap_or(adamw_decay()),
            },
            "sgd" => OptimizerConfig::Sgd { momentum: num("momentum")?.unwrap_or(momentum()), weight_decay: 0.0 },
            _ => return Err(parts::unlisted::<Self>(form)),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl OptimizerConfig {
    pub fn parse(s: &str) -> Result<Self> {
        <Self as Part>::parse(s)
    }

    pub fn validate(&self) -> Result<()> {
        let in_unit = |v: f32, what: &str| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(EngineError::config(format!("optimizer {what}"), format!("must be in [0, 1), got {v}")))
            }
        };
        let non_negative = |v: f32, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(EngineError::config(format!("optimizer {what}"), format!("must be a number >= 0, got {v}")))
            }
        };
        match *self {
            OptimizerConfig::Adam { beta1, beta2, eps } => {
                in_unit(beta1, "beta1")?;
                in_unit(beta2, "beta2")?;
                non_negative(eps, "eps")
            }
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => {
                in_unit(beta1, "beta1")?;
                in_unit(beta2, "beta2")?;
                non_negative(eps, "eps")?;
                non_negative(weight_decay, "weight_decay")
            }
            OptimizerConfig::Sgd { momentum, weight_decay } => {
                in_unit(momentum, "momentum")?;
                non_negative(weight_decay, "weight_decay")
            }
        }
    }
}

/// A contiguous range of parameters trained with `lr * lr_scale`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    pub name: String,
    pub range: Range<usize>,
    pub lr_scale: f32,
    /// Trained by plain SGD (`p -= lr * lr_scale * g`) whatever the optimizer, with no moments kept for it.
    pub plain_sgd: bool,
}

impl ParamGroup {
    pub fn new(name: &str, range: Range<usize>, lr_scale: f32) -> ParamGroup {
        ParamGroup { name: name.into(), range, lr_scale, plain_sgd: false }
    }
}

/// How many parameters of `groups` the optimizer keeps moments for: [`Optimizer::new`]'s size.
pub fn moment_params(groups: &[ParamGroup]) -> usize {
    groups.iter().filter(|g| !g.plain_sgd).map(|g| g.range.len()).sum()
}

/// Optimizer state: first and second moments (only those the method needs) and the step count. The moments cover
/// the groups that keep them, one after the other in the groups' order (see [`moment_params`]).
#[derive(Debug, Clone)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: u64,
    /// The last step's per-chunk sums of squares of the gradients, kept so that a step allocates nothing.
    chunk_sums: Vec<f64>,
}

/// Parameters handed to one Rayon task; fixed so that results do not depend on the thread count.
const CHUNK: usize = 1 << 13;

impl Optimizer {
    /// State for `n_params` parameters with moments ([`moment_params`] of the groups that [`Optimizer::step`] gets).
    pub fn new(config: OptimizerConfig, n_params: usize) -> Optimizer {
        let (m, v) = match config {
            OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => {
                (crate::memory::zeroed(n_params), crate::memory::zeroed(n_params))
            }
            OptimizerConfig::Sgd { momentum, .. } => {
                (if momentum > 0.0 { crate::memory::zeroed(n_params) } else { vec![] }, vec![])
            }
        };
        Optimizer { config, m, v, t: 0, chunk_sums: Vec::new() }
    }

    /// One update of `params` from `grads` at learning rate `lr`, per group.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32, groups: &[ParamGroup]) {
        self.step_with_sparse(params, grads, lr, groups, None);
    }

    /// [`Optimizer::step`] that also returns the gradients' sum of squares, found in the same pass: each chunk of
    /// gradients is summed while it is in cache and then updated, only if its sum is finite. That saves the separate
    /// pass over every gradient that a norm costs before the update (4 % of a step with tables of 100 million
    /// parameters). A non-finite sum means that the chunks holding the non-finite gradients kept their parameters
    /// and moments while the others were updated: the caller reports the divergence and stops.
    pub fn step_measured(&mut self, params: &mut [f32], grads: &[f32], lr: f32, groups: &[ParamGroup]) -> f64 {
        self.step_with_sparse(params, grads, lr, groups, None)
    }

    /// [`Optimizer::step_measured`] where one group's gradient may be sparse: `sparse` names it and lists the rows
    /// its gradient touched, and only those are updated ("lazy" Adam: the other rows keep their values and moments,
    /// and the bias correction counts every step, as TensorFlow's LazyAdam and PyTorch's SparseAdam do). The sum of
    /// squares it returns is the dense groups' only.
    pub fn step_with_sparse(
        &mut self,
        params: &mut [f32],
        grads: &[f32],
        lr: f32,
        groups: &[ParamGroup],
        sparse: Option<&SparseRows>,
    ) -> f64 {
        self.t += 1;
        let rule = Rule::new(self.config, self.t);
        let has_m = !self.m.is_empty();
        let has_v = !self.v.is_empty();
        let mut sum_of_squares = 0.0;
        let mut moments = 0;
        for group in groups {
            let r = group.range.clone();
            let lr = lr * group.lr_scale;
            let (p, g) = (&mut params[r.clone()], &grads[r.clone()]);
            if group.plain_sgd {
                let plain = Rule::new(OptimizerConfig::Sgd { momentum: 0.0, weight_decay: 0.0 }, self.t);
                plain.update_dense(lr, p, g, &mut [], &mut [], &mut self.chunk_sums);
                sum_of_squares += self.chunk_sums.iter().sum::<f64>();
                continue;
            }
            let mr = moments..moments + r.len();
            moments = mr.end;
            let m = if has_m { &mut self.m[mr.clone()] } else { &mut [][..] };
            let v = if has_v { &mut self.v[mr] } else { &mut [][..] };
            match sparse.filter(|s| s.group == group.name) {
                Some(rows) => rule.update_rows(lr, p, g, m, v, rows),
                None => {
                    rule.update_dense(lr, p, g, m, v, &mut self.chunk_sums);
                    sum_of_squares += self.chunk_sums.iter().sum::<f64>();
                }
            }
        }
        sum_of_squares
    }
}

/// Rows of a parameter group marked in a bitset: bit `i` of `marks` (bit `i % 64` of word `i / 64`) set means
/// row `first_row + i` was touched.
#[derive(Clone, Copy, Debug)]
pub struct MarkedRows<'a> {
    pub first_row: usize,
    pub marks: &'a [u64],
}

/// Words of marks handed to one Rayon task: 16k rows.
const MARK_WORDS: usize = 256;

impl MarkedRows<'_> {
    /// Calls `f` with every marked row, in parallel over fixed chunks of rows, each chunk in row order.
    pub fn par_for_each(sets: &[MarkedRows], f: impl Fn(usize) + Sync) {
        sets.par_iter().for_each(|set| {
            set.marks.par_chunks(MARK_WORDS).enumerate().for_each(|(c, words)| {
                for (w, &word) in words.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        let b = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        f(set.first_row + (c * MARK_WORDS + w) * 64 + b);
                    }
                }
            });
        });
    }

    /// The sum over marked rows of `g(row)`, in f64, summed in a fixed order whatever the thread count.
    pub fn sum(sets: &[MarkedRows], g: impl Fn(usize) -> f64 + Sync) -> f64 {
        let per_set: Vec<f64> = sets
            .iter()
            .map(|set| {
                let partial: Vec<f64> = set
                    .marks
                    .par_chunks(MARK_WORDS)
                    .enumerate()
                    .map(|(c, words)| {
                        let mut acc = 0.0;
                        for (w, &word) in words.iter().enumerate() {
                            let mut bits = word;
                            while bits != 0 {
                                let b = bits.trailing_zeros() as usize;
                                bits &= bits - 1;
                                acc += g(set.first_row + (c * MARK_WORDS + w) * 64 + b);
                            }
                        }
                        acc
                    })
                    .collect();
                partial.iter().sum()
            })
            .collect();
        per_set.iter().sum()
    }
}

/// The rows of one parameter group that a sparse gradient touched, `width` parameters each, numbered from the
/// group's first parameter.
pub struct SparseRows<'a> {
    pub group: &'a str,
    pub width: usize,
    pub sets: &'a [MarkedRows<'a>],
}

/// One step's update rule, with the step's constants worked out once.
#[derive(Clone, Copy)]
struct Rule {
    config: OptimizerConfig,
    beta1_t: f32,
    bc2_sqrt: f32,
    first: bool,
}

impl Rule {
    fn new(config: OptimizerConfig, t: u64) -> Rule {
        let (b1, b2) = match config {
            OptimizerConfig::Adam { beta1, beta2, .. } | OptimizerConfig::AdamW { beta1, beta2, .. } => (beta1, beta2),
            OptimizerConfig::Sgd { .. } => (0.0, 0.0),
        };
        let t = t.min(i32::MAX as u64) as i32;
        Rule { config, beta1_t: b1.powi(t), bc2_sqrt: (1.0 - b2.powi(t)).sqrt(), first: t == 1 }
    }

    /// Updates `p` from `g` with the moments `m` and `v` (empty where the method keeps none), element by element.
    fn update(&self, lr: f32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        match self.config {
            OptimizerConfig::Adam { beta1, beta2, eps } | OptimizerConfig::AdamW { beta1, beta2, eps, .. } => {
                let decay = match self.config {
                    OptimizerConfig::AdamW { weight_decay, .. } => 1.0 - lr * weight_decay,
                    _ => 1.0,
                };
                // PyTorch's formulation, so that fixtures agree to rounding.
                let step_size = lr / (1.0 - self.beta1_t);
                for i in 0..p.len() {
                    let gi = g[i];
                    m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
                    v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                    let denom = v[i].sqrt() / self.bc2_sqrt + eps;
                    p[i] = p[i] * decay - step_size * m[i] / denom;
                }
            }
            OptimizerConfig::Sgd { momentum, weight_decay } => {
                if momentum > 0.0 {
                    for i in 0..p.len() {
                        let gi = g[i] + weight_decay * p[i];
                        m[i] = if self.first { gi } else { momentum * m[i] + gi };
                        p[i] -= lr * m[i];
                    }
                } else {
                    for i in 0..p.len() {
                        p[i] -= lr * (g[i] + weight_decay * p[i]);
                    }
                }
            }
        }
    }

    /// Updates every chunk of `p` whose gradients' sum of squares is finite, and writes the chunks' sums to
    /// `chunk_sums`.
    fn update_dense(&self, lr: f32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], chunk_sums: &mut Vec<f64>) {
        let measured = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            let sum = chunk_sum_of_squares(g);
            if sum.is_finite() {
                self.update(lr, p, g, m, v);
            }
            sum
        };
        let pg = p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK));
        match (m.is_empty(), v.is_empty()) {
            (false, false) => pg
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .map(|(((p, g), m), v)| measured(p, g, m, v))
                .collect_into_vec(chunk_sums),
            (false, true) => pg
                .zip(m.par_chunks_mut(CHUNK))
                .map(|((p, g), m)| measured(p, g, m, &mut []))
                .collect_into_vec(chunk_sums),
            _ => pg.map(|(p, g)| measured(p, g, &mut [], &mut [])).collect_into_vec(chunk_sums),
        }
    }

    fn update_rows(&self, lr: f32, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], rows: &SparseRows) {
        let w = rows.width;
        let (p, m, v) = (SharedRows::new(p, w), SharedRows::new(m, w), SharedRows::new(v, w));
        MarkedRows::par_for_each(rows.sets, |r| {
            // SAFETY: every row is marked once and levels own disjoint rows, so no two tasks touch the same row of
            // `p`, `m` or `v`.
            let (pr, mr, vr) = unsafe { (p.row(r), m.row(r), v.row(r)) };
            self.update(lr, pr, &g[r * w..(r + 1) * w], mr, vr);
        });
    }
}

/// A parameter slice shared between tasks that each write distinct rows of it.
struct SharedRows {
    ptr: *mut f32,
    len: usize,
    width: usize,
}

// SAFETY: only handed to tasks that write distinct rows (see `Rule::update_rows`).
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(s: &mut [f32], width: usize) -> SharedRows {
        SharedRows { ptr: s.as_mut_ptr(), len: s.len(), width }
    }

    /// Row `r`, or an empty slice where the slice holds no such row (a method without this moment).
    ///
    /// # Safety
    /// No other live reference may cover row `r`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, r: usize) -> &mut [f32] {
        if (r + 1) * self.width > self.len {
            return &mut [];
        }
        std::slice::from_raw_parts_mut(self.ptr.add(r * self.width), self.width)
    }
}

/// Sum of squares of `values`, in f64, reduced in a fixed order so that it is bitwise reproducible.
pub fn sum_of_squares(values: &[f32]) -> f64 {
    sum_of_squares_with(values, &mut Vec::new())
}

/// [`sum_of_squares`] with the chunks' sums kept in `partials`, which a caller that keeps it allocates only once.
pub fn sum_of_squares_with(values: &[f32], partials: &mut Vec<f64>) -> f64 {
    values.par_chunks(CHUNK).map(chunk_sum_of_squares).collect_into_vec(partials);
    partials.iter().sum()
}

/// One chunk's sum of squares in eight running sums: one sum is a chain of dependent additions that waits on each
/// one's latency (it was 8 % of a hash-grid step), eight are independent and vectorise.
fn chunk_sum_of_squares(chunk: &[f32]) -> f64 {
    let mut sums = [0.0f64; 8];
    let mut octets = chunk.chunks_exact(8);
    for octet in &mut octets {
        for (s, v) in sums.iter_mut().zip(octet) {
            *s += (*v as f64) * (*v as f64);
        }
    }
    let tail: f64 = octets.remainder().iter().map(|v| (*v as f64) * (*v as f64)).sum();
    sums.iter().sum::<f64>() + tail
}

/// Sum of squares of the marked rows (of `width` values) of `values`, in f64, in a fixed order.
pub fn marked_sum_of_squares(values: &[f32], width: usize, sets: &[MarkedRows]) -> f64 {
    MarkedRows::sum(sets, |r| values[r * width..(r + 1) * width].iter().map(|v| (*v as f64) * (*v as f64)).sum())
}

/// Multiplies the marked rows (of `width` values) of `values` by `factor`; 0 sets them to 0 (NaN included).
pub fn scale_marked(values: &mut [f32], width: usize, sets: &[MarkedRows], factor: f32) {
    let shared = SharedRows::new(values, width);
    MarkedRows::par_for_each(sets, |r| {
        // SAFETY: every row is marked once (see `Rule::update_rows`).
        let row = unsafe { shared.row(r) };
        if factor == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|v| *v *= factor);
        }
    });
}

/// Scales `grads` so that their global norm is at most `max_norm` (PyTorch's `clip_grad_norm_`). Returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut [f32], norm: f64, max_norm: f32) {
    let coef = max_norm as f64 / (norm + 1e-6);
    if coef < 1.0 {
        let coef = coef as f32;
        grads.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|g| *g *= coef));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: usize) -> Vec<ParamGroup> {
        vec![ParamGroup::new("all", 0..n, 1.0)]
    }

    #[test]
    fn adam_matches_its_formula() {
        let mut opt = Optimizer::new(OptimizerConfig::default(), 2);
        let mut p = vec![1.0f32, -2.0];
        let grads = [[0.5f32, -1.0], [0.1, 0.3]];
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64);
        let (mut m, mut v, mut want) = ([0.0f64; 2], [0.0f64; 2], [1.0f64, -2.0]);
        for (t, g) in grads.iter().enumerate() {
            opt.step(&mut p, g, lr as f32, &all(2));
            let t = t as i32 + 1;
            for i in 0..2 {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i] as f64;
                v[i] = b2 * v[i] + (1.0 - b2) * (g[i] as f64).powi(2);
                let mhat = m[i] / (1.0 - b1.powi(t));
                let vhat = v[i] / (1.0 - b2.powi(t));
                want[i] -= lr * mhat / (vhat.sqrt() + eps);
            }
        }
        for i in 0..2 {
            assert!((p[i] as f64 - want[i]).abs() < 1e-6, "{} vs {}", p[i], want[i]);
        }
    }

    #[test]
    fn a_measured_step_applies_the_rule_to_every_value_and_sums_the_squares_of_its_gradients() {
        let n = 3 * CHUNK + 5;
        let grads: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 1e-3).collect();
        let groups = [ParamGroup::new("a", 0..CHUNK + 3, 2.0), ParamGroup::new("b", CHUNK + 3..n, 1.0)];
        for config in [OptimizerConfig::default(), OptimizerConfig::parse("sgd:0.9").unwrap()] {
            // The reference: the rule on each group's values whole, without chunks or the finiteness check.
            let has_v = matches!(config, OptimizerConfig::Adam { .. });
            let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; if has_v { n } else { 0 }]);
            let mut measured = Optimizer::new(config, n);
            let mut q = vec![0.5f32; n];
            for t in 1..=2 {
                let rule = Rule::new(config, t);
                for group in &groups {
                    let r = group.range.clone();
                    let v = if has_v { &mut v[r.clone()] } else { &mut [][..] };
                    rule.update(0.01 * group.lr_scale, &mut p[r.clone()], &grads[r.clone()], &mut m[r.clone()], v);
                }
                let sum = measured.step_measured(&mut q, &grads, 0.01, &groups);
                let want = sum_of_squares(&grads[..CHUNK + 3]) + sum_of_squares(&grads[CHUNK + 3..]);
                assert_eq!(sum, want);
            }
            assert_eq!(p, q);
            assert!(p.iter().zip(&grads).all(|(&x, &g)| g == 0.0 || x != 0.5), "every value with a gradient moved");
        }
    }

    #[test]
    fn a_measured_step_leaves_the_chunks_with_non_finite_gradients_as_they_were() {
        let n = 2 * CHUNK;
        let mut grads = vec![0.1f32; n];
        grads[CHUNK + 7] = f32::NAN;
        let mut opt = Optimizer::new(OptimizerConfig::default(), n);
        let mut p = vec![1.0f32; n];
        let sum = opt.step_measured(&mut p, &grads, 0.01, &all(n));
        assert!(sum.is_nan());
        assert!(p[..CHUNK].iter().all(|&v| v < 1.0), "the finite chunk is updated");
        assert!(p[CHUNK..].iter().all(|&v| v == 1.0), "the chunk holding the NaN keeps its values");
        assert!(opt.m[CHUNK..].iter().chain(&opt.v[CHUNK..]).all(|&v| v == 0.0), "and its moments");
    }

    #[test]
    fn adamw_decays_and_sgd_uses_momentum() {
        let mut opt =
            Optimizer::new(OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.5 }, 1);
        let mut p = vec![2.0];
        opt.step(&mut p, &[0.0], 0.1, &all(1));
        // zero gradient: only the decoupled decay acts
        assert!((p[0] - 2.0 * (1.0 - 0.1 * 0.5)).abs() < 1e-7);

        let mut sgd = Optimizer::new(OptimizerConfig::Sgd { momentum: 0.9, weight_decay: 0.0 }, 1);
        let mut p = vec![0.0];
        sgd.step(&mut p, &[1.0], 0.1, &all(1));
        sgd.step(&mut p, &[1.0], 0.1, &all(1));
        // buffers 1 then 1.9
        assert!((p[0] - -(0.1 + 0.19)).abs() < 1e-7);
    }

    #[test]
    fn groups_scale_the_learning_rate() {
        let mut sgd = Optimizer::new(OptimizerConfig::Sgd { momentum: 0.0, weight_decay: 0.0 }, 2);
        let mut p = vec![0.0, 0.0];
        let groups = vec![ParamGroup::new("encoding", 0..1, 10.0), ParamGroup::new("network", 1..2, 1.0)];
        sgd.step(&mut p, &[1.0, 1.0], 0.1, &groups);
        assert_eq!(p, vec![-1.0, -0.1]);
    }

    #[test]
    fn a_plain_sgd_group_keeps_no_moments_and_the_groups_around_it_keep_theirs() {
        // Adam on [0, 2) and [5, 7), plain SGD on [2, 5): the moments hold the Adam groups' four values, in order.
        let mut groups = vec![
            ParamGroup::new("a", 0..2, 1.0),
            ParamGroup::new("tables", 2..5, 100.0),
            ParamGroup::new("b", 5..7, 1.0),
        ];
        groups[1].plain_sgd = true;
        assert_eq!(moment_params(&groups), 4);
        let mut opt = Optimizer::new(OptimizerConfig::default(), 4);
        let mut reference = Optimizer::new(OptimizerConfig::default(), 4);
        let grads = [0.5f32, -1.0, 0.01, -0.02, 0.03, 2.0, -0.25];
        let (mut p, mut q) = (vec![1.0f32; 7], vec![1.0f32; 4]);
        let adam_grads = [grads[0], grads[1], grads[5], grads[6]];
        for _ in 0..2 {
            let sum = opt.step_measured(&mut p, &grads, 0.01, &groups);
            reference.step(&mut q, &adam_grads, 0.01, &all(4));
            let want: f64 = grads.iter().map(|&g| g as f64 * g as f64).sum();
            assert!((sum - want).abs() < 1e-12, "the norm counts every group: {sum} vs {want}");
        }
        assert_eq!([p[0], p[1], p[5], p[6]], [q[0], q[1], q[2], q[3]], "the Adam groups step as if alone");
        assert_eq!(opt.m, reference.m);
        for i in 2..5 {
            let want = 1.0 - 2.0 * 0.01 * 100.0 * grads[i];
            assert!((p[i] - want).abs() < 1e-6, "plain SGD, twice: {} vs {want}", p[i]);
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![3.0, 4.0];
        let norm = sum_of_squares(&g).sqrt();
        assert_eq!(norm, 5.0);
        clip_grad_norm(&mut g, norm, 1.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        let mut small = vec![0.1];
        clip_grad_norm(&mut small, 0.1, 1.0);
        assert_eq!(small, vec![0.1]);
    }

    #[test]
    fn sum_of_squares_matches_the_formula_across_chunks_and_tails() {
        // Integers and halves square and add exactly in f64, so the running sums' order cannot change the result.
        for len in [0, 1, 7, 8, 9, CHUNK - 1, CHUNK, 3 * CHUNK + 13] {
            let values: Vec<f32> = (0..len).map(|i| ((i % 37) as f32 - 18.0) * 0.5).collect();
            let expected: f64 = values.iter().map(|v| (*v as f64).powi(2)).sum();
            assert_eq!(sum_of_squares(&values), expected, "{len} values");
        }
        // Kept partials give the same sum and, once large enough, are not allocated again.
        let values: Vec<f32> = (0..3 * CHUNK + 13).map(|i| (i % 5) as f32).collect();
        let mut partials = Vec::new();
        let first = sum_of_squares_with(&values, &mut partials);
        let at = partials.as_ptr();
        assert_eq!(first, sum_of_squares(&values));
        assert_eq!(sum_of_squares_with(&values[..CHUNK + 1], &mut partials), sum_of_squares(&values[..CHUNK + 1]));
        assert_eq!(sum_of_squares_with(&values, &mut partials), first);
        assert_eq!(partials.as_ptr(), at);
        assert!(sum_of_squares(&[1.0, f32::NAN, 2.0]).is_nan());
        assert!(sum_of_squares(&[f32::INFINITY]).is_infinite());
    }

    #[test]
    fn rejects_bad_hyperparameters() {
        assert!(OptimizerConfig::parse("sgd:1.5").unwrap_err().to_string().contains("momentum"));
        assert!(OptimizerConfig::parse("rmsprop").unwrap_err().to_string().contains("adam"));
        assert!(OptimizerConfig::parse("adamw:nan").is_err());
    }
}
