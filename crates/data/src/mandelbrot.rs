use std::borrow::Cow;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fixed::FixedSet;
use crate::{mse, psnr_from_mse, DataError, Dataset, EvalSet, Kind, Metrics, EVAL_POINTS, EVAL_SEED};

/// Default window `[x0, x1, y0, y1]`.
pub const MANDELBROT_WINDOW: [f64; 4] = [-2.65, 1.15, -1.2, 1.2];
const DEFAULT_DEPTH: u32 = 200;
const DEFAULT_SAMPLES: usize = 100_000;
const MAX_SAMPLES: usize = 100_000_000;
const MAX_DEPTH: u32 = 1_000_000;
/// Points per rayon task: large enough to amortise scheduling, small enough to balance the very
/// uneven cost of inside and outside points.
const CHUNK: usize = 512;

/// Escape radius of the periodic colouring: large so that the distance estimate is accurate.
const PERIODIC_RADIUS: f64 = 1e4;

/// Which function of the escape to learn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MandelbrotTarget {
    /// See [`mandelbrot_smooth`].
    #[default]
    Smooth,
    /// See [`mandelbrot_periodic`].
    Periodic,
}

/// `kind = "mandelbrot"`: `(x, y) -> [0, 1]` over a window of the complex plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandelbrotSpec {
    /// `[x0, x1, y0, y1]`, with x0 < x1 and y0 < y1.
    #[serde(default = "default_window")]
    pub window: [f64; 4],
    /// Maximum number of iterations, at least 1.
    #[serde(default = "default_depth")]
    pub depth: u32,
    #[serde(default)]
    pub target: MandelbrotTarget,
    /// Size of the fixed random training sample; default 100000. Not allowed with `on_the_fly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Draw fresh uniform points for every batch instead of a fixed sample.
    #[serde(default)]
    pub on_the_fly: bool,
}

fn default_window() -> [f64; 4] {
    MANDELBROT_WINDOW
}

fn default_depth() -> u32 {
    DEFAULT_DEPTH
}

impl Default for MandelbrotSpec {
    fn default() -> Self {
        MandelbrotSpec {
            window: MANDELBROT_WINDOW,
            depth: DEFAULT_DEPTH,
            target: MandelbrotTarget::Smooth,
            samples: None,
            on_the_fly: false,
        }
    }
}

/// `1 - 1/(n/50 + 1)`, where `n` is the 0-based iteration at which `|z|` first exceeds 2
/// (`z <- z^2 + c` from `z = 0`; the first update is iteration 0), and 1 for points that do not
/// escape within `depth` iterations.
pub fn mandelbrot_smooth(cx: f64, cy: f64, depth: u32) -> f64 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    for n in 0..depth {
        let xn = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = xn;
        if x * x + y * y > 4.0 {
            return 1.0 - 1.0 / (n as f64 / 50.0 + 1.0);
        }
    }
    1.0
}

/// `0.5 + 0.5 sin(2 pi * 0.05 * ln d)` with the distance estimate `d = |z| ln|z| / |dz|` taken
/// when `|z|` first exceeds 1e4, where `dz` is the orbit derivative (`dz <- 2 z dz + 1` from
/// `dz = 0`, updated with the old `z`); 1 for points that do not escape within `depth`
/// iterations.
pub fn mandelbrot_periodic(cx: f64, cy: f64, depth: u32) -> f64 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let (mut dx, mut dy) = (0.0f64, 0.0f64);
    for _ in 0..depth {
        let dxn = 2.0 * (x * dx - y * dy) + 1.0;
        dy = 2.0 * (x * dy + y * dx);
        dx = dxn;
        let xn = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = xn;
        let r2 = x * x + y * y;
        if r2 > PERIODIC_RADIUS * PERIODIC_RADIUS {
            let r = r2.sqrt();
            let d = r * r.ln() / dx.hypot(dy);
            return 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 0.05 * d.ln()).sin();
        }
    }
    1.0
}

fn target_fn(target: MandelbrotTarget) -> fn(f64, f64, u32) -> f64 {
    match target {
        MandelbrotTarget::Smooth => mandelbrot_smooth,
        MandelbrotTarget::Periodic => mandelbrot_periodic,
    }
}

/// Evaluates `f` at every `(x, y)` row of `inputs`, in parallel over fixed-size chunks.
fn compute(f: fn(f64, f64, u32) -> f64, depth: u32, inputs: &[f32], out: &mut [f32]) {
    inputs.par_chunks(2 * CHUNK).zip(out.par_chunks_mut(CHUNK)).for_each(|(inp, o)| {
        for (p, v) in inp.chunks_exact(2).zip(o.iter_mut()) {
            *v = f(p[0] as f64, p[1] as f64, depth) as f32;
        }
    });
}

/// Evaluates `f` at every `(x, y)` row of f64 `inputs`, as [`compute`] does.
fn compute_f64(f: fn(f64, f64, u32) -> f64, depth: u32, inputs: &[f64], out: &mut [f32]) {
    inputs.par_chunks(2 * CHUNK).zip(out.par_chunks_mut(CHUNK)).for_each(|(inp, o)| {
        for (p, v) in inp.chunks_exact(2).zip(o.iter_mut()) {
            *v = f(p[0], p[1], depth) as f32;
        }
    });
}

fn draw_points(rng: &mut rand_pcg::Pcg64, window: &[f64; 4], out: &mut [f32]) {
    let [x0, x1, y0, y1] = *window;
    for p in out.chunks_exact_mut(2) {
        p[0] = (x0 + (x1 - x0) * rng.gen::<f64>()) as f32;
        p[1] = (y0 + (y1 - y0) * rng.gen::<f64>()) as f32;
    }
}

/// The points [`draw_points`] draws from the same stream, not rounded to f32.
fn draw_points_f64(rng: &mut rand_pcg::Pcg64, window: &[f64; 4], out: &mut [f64]) {
    let [x0, x1, y0, y1] = *window;
    for p in out.chunks_exact_mut(2) {
        p[0] = x0 + (x1 - x0) * rng.gen::<f64>();
        p[1] = y0 + (y1 - y0) * rng.gen::<f64>();
    }
}

pub struct MandelbrotDataset {
    name: String,
    window: [f64; 4],
    domain: [(f64, f64); 2],
    depth: u32,
    target: MandelbrotTarget,
    /// None when points are drawn on the fly.
    train: Option<FixedSet>,
    eval: FixedSet,
}

impl std::fmt::Debug for MandelbrotDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MandelbrotDataset").field("name", &self.name).finish()
    }
}

impl MandelbrotDataset {
    pub fn build(spec: &MandelbrotSpec, seed: u64) -> Result<MandelbrotDataset, DataError> {
        let [x0, x1, y0, y1] = spec.window;
        if spec.window.iter().any(|v| !v.is_finite()) {
            return Err(DataError::invalid(
                "mandelbrot window",
                format!("all of [x0, x1, y0, y1] must be finite, got {:?}", spec.window),
            ));
        }
        if x0 >= x1 {
            return Err(DataError::invalid("mandelbrot window", format!("x0 ({x0:?}) must be less than x1 ({x1:?})")));
        }
        if y0 >= y1 {
            return Err(DataError::invalid("mandelbrot window", format!("y0 ({y0:?}) must be less than y1 ({y1:?})")));
        }
        if spec.depth < 1 {
            return Err(DataError::invalid("mandelbrot depth", format!("must be at least 1, got {}", spec.depth)));
        }
        if spec.depth > MAX_DEPTH {
            return Err(DataError::invalid(
                "mandelbrot depth",
                format!("must be at most {MAX_DEPTH}, got {}", spec.depth),
            ));
        }
        if spec.on_the_fly && spec.samples.is_some() {
            return Err(DataError::invalid(
                "mandelbrot samples",
                "cannot be combined with on_the_fly = true; expected one of the two",
            ));
        }
        let f = target_fn(spec.target);
        let train = if spec.on_the_fly {
            None
        } else {
            let n = spec.samples.unwrap_or(DEFAULT_SAMPLES);
            if n == 0 || n > MAX_SAMPLES {
                return Err(DataError::invalid(
                    "mandelbrot samples",
                    format!("must be between 1 and {MAX_SAMPLES}, got {n}"),
                ));
            }
            let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
            let mut inputs = vec![0.0f32; 2 * n];
            draw_points(&mut rng, &spec.window, &mut inputs);
            let mut targets = vec![0.0f32; n];
            compute(f, spec.depth, &inputs, &mut targets);
            Some(FixedSet { inputs, targets, in_dims: 2, out_dims: 1 })
        };
        let mut rng = rand_pcg::Pcg64::seed_from_u64(EVAL_SEED);
        let mut inputs = vec![0.0f32; 2 * EVAL_POINTS];
        draw_points(&mut rng, &spec.window, &mut inputs);
        let mut targets = vec![0.0f32; EVAL_POINTS];
        compute(f, spec.depth, &inputs, &mut targets);
        let which = match spec.target {
            MandelbrotTarget::Smooth => "smooth",
            MandelbrotTarget::Periodic => "periodic",
        };
        let sampling = match &train {
            Some(t) => format!("{} samples", t.len()),
            None => "on the fly".to_string(),
        };
        Ok(MandelbrotDataset {
            name: format!("mandelbrot {which} depth {} ({sampling})", spec.depth),
            window: spec.window,
            domain: [(x0, x1), (y0, y1)],
            depth: spec.depth,
            target: spec.target,
            train,
            eval: FixedSet { inputs, targets, in_dims: 2, out_dims: 1 },
        })
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn target(&self) -> MandelbrotTarget {
        self.target
    }
}

impl Dataset for MandelbrotDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        2
    }
    fn output_dims(&self) -> usize {
        1
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        Kind::ScalarField2d
    }
    fn len(&self) -> Option<usize> {
        self.train.as_ref().map(FixedSet::len)
    }
    fn fill_batch(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f32], targets: &mut [f32]) {
        match &self.train {
            Some(t) => t.fill_batch(rng, inputs, targets),
            None => {
                let n = (inputs.len() / 2).min(targets.len());
                draw_points(rng, &self.window, &mut inputs[..2 * n]);
                compute(target_fn(self.target), self.depth, &inputs[..2 * n], &mut targets[..n]);
            }
        }
    }
    fn fill_batch_f64(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f64], targets: &mut [f32]) {
        let n = (inputs.len() / 2).min(targets.len());
        match &self.train {
            Some(t) => crate::with_f32_buffer(2 * n, |narrow| {
                t.fill_batch(rng, narrow, targets);
                inputs.iter_mut().zip(narrow.iter()).for_each(|(w, v)| *w = *v as f64);
            }),
            None => {
                draw_points_f64(rng, &self.window, &mut inputs[..2 * n]);
                compute_f64(target_fn(self.target), self.depth, &inputs[..2 * n], &mut targets[..n]);
            }
        }
    }
    fn truth_f64(&self, inputs: &[f64], out: &mut [f32]) -> bool {
        let n = (inputs.len() / 2).min(out.len());
        compute_f64(target_fn(self.target), self.depth, &inputs[..2 * n], &mut out[..n]);
        true
    }
    fn training_points(&self) -> Option<(&[f32], &[f32])> {
        self.train.as_ref().map(|t| (t.inputs.as_slice(), t.targets.as_slice()))
    }
    fn eval_set(&self) -> EvalSet<'_> {
        EvalSet { inputs: Cow::Borrowed(&self.eval.inputs), targets: Cow::Borrowed(&self.eval.targets) }
    }
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool {
        let n = (inputs.len() / 2).min(out.len());
        compute(target_fn(self.target), self.depth, &inputs[..2 * n], &mut out[..n]);
        true
    }
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        let m = mse(pred, target);
        Metrics { mse: m, psnr: Some(psnr_from_mse(m)), mean_sq_dist: None, accuracy: None }
    }
}
