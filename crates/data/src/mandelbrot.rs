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

/// Whether `c` lies inside the main cardioid or the period-2 disc, with a margin of 1e-12: such points never
/// escape, so the targets are 1 without iterating (inside points are the costliest, `depth` iterations each, and
/// these two cover 91 % of the set's area). A point at distance `e` outside either boundary takes more than about
/// `pi / sqrt(e)` iterations to escape, 3 million at the margin, more than [`MAX_DEPTH`]: the shortcut changes no
/// target, and rounding (about 1e-16 here) cannot move a point across the margin.
pub fn surely_inside(cx: f64, cy: f64) -> bool {
    const MARGIN: f64 = 1e-12;
    let xq = cx - 0.25;
    let q = xq * xq + cy * cy;
    let bulb = (cx + 1.0) * (cx + 1.0) + cy * cy;
    q * (q + xq) < 0.25 * cy * cy - MARGIN || bulb < 1.0 / 16.0 - MARGIN
}

/// `1 - 1/(n/50 + 1)`, where `n` is the 0-based iteration at which `|z|` first exceeds 2
/// (`z <- z^2 + c` from `z = 0`; the first update is iteration 0), and 1 for points that do not
/// escape within `depth` iterations.
pub fn mandelbrot_smooth(cx: f64, cy: f64, depth: u32) -> f64 {
    if surely_inside(cx, cy) {
        return 1.0;
    }
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
    if surely_inside(cx, cy) {
        return 1.0;
    }
    periodic_by_iterating(cx, cy, depth)
}

/// [`mandelbrot_periodic`] without the shortcut.
pub fn periodic_by_iterating(cx: f64, cy: f64, depth: u32) -> f64 {
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
            return periodic_value(r2, dx, dy);
        }
    }
    1.0
}

/// The periodic target of an orbit that escaped with `|z|^2 = r2` and derivative `(dx, dy)`.
fn periodic_value(r2: f64, dx: f64, dy: f64) -> f64 {
    let r = r2.sqrt();
    let d = r * r.ln() / dx.hypot(dy);
    0.5 + 0.5 * (2.0 * std::f64::consts::PI * 0.05 * d.ln()).sin()
}

/// Evaluates `target` at every `(x, y)` row of `inputs`, in parallel over fixed-size chunks.
fn compute(target: MandelbrotTarget, depth: u32, inputs: &[f32], out: &mut [f32]) {
    inputs.par_chunks(2 * CHUNK).zip(out.par_chunks_mut(CHUNK)).for_each(|(inp, o)| match target {
        MandelbrotTarget::Periodic => {
            let mut wide = [0.0f64; 2 * CHUNK];
            wide.iter_mut().zip(inp).for_each(|(w, v)| *w = *v as f64);
            periodic_rows(&wide[..inp.len()], depth, o);
        }
        MandelbrotTarget::Smooth => {
            for (p, v) in inp.chunks_exact(2).zip(o.iter_mut()) {
                *v = mandelbrot_smooth(p[0] as f64, p[1] as f64, depth) as f32;
            }
        }
    });
}

/// Evaluates `target` at every `(x, y)` row of f64 `inputs`, as [`compute`] does (the periodic target in lanes).
fn compute_f64(target: MandelbrotTarget, depth: u32, inputs: &[f64], out: &mut [f32]) {
    inputs.par_chunks(2 * CHUNK).zip(out.par_chunks_mut(CHUNK)).for_each(|(inp, o)| match target {
        MandelbrotTarget::Periodic => periodic_rows(inp, depth, o),
        MandelbrotTarget::Smooth => {
            for (p, v) in inp.chunks_exact(2).zip(o.iter_mut()) {
                *v = mandelbrot_smooth(p[0], p[1], depth) as f32;
            }
        }
    });
}

/// Points iterated together by [`periodic_rows`]: two AVX2 registers of f64 per quantity, so that two independent
/// chains of multiplies hide each other's latency.
const LANES: usize = 8;

/// [`mandelbrot_periodic`] at every `(x, y)` row of `points`, bit for bit, [`LANES`] points at a time (one core).
pub fn periodic_rows(points: &[f64], depth: u32, out: &mut [f32]) {
    periodic_rows_with(points, depth, |i, v| out[i] = v as f32);
}

/// [`periodic_rows`] into f64.
pub fn periodic_rows_f64(points: &[f64], depth: u32, out: &mut [f64]) {
    periodic_rows_with(points, depth, |i, v| out[i] = v);
}

fn periodic_rows_with(points: &[f64], depth: u32, emit: impl FnMut(usize, f64)) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, which `iterate_avx2` is compiled for.
        return periodic_rows_body(points, depth, emit, |g| unsafe { iterate_avx2(g, depth) });
    }
    periodic_rows_body(points, depth, emit, |g| iterate_lanes(g, depth))
}

/// [`LANES`] orbits: the points `c`, their `z` and `dz`, and which are still iterating.
#[derive(Clone, Copy)]
struct Group {
    cx: [f64; LANES],
    cy: [f64; LANES],
    x: [f64; LANES],
    y: [f64; LANES],
    dx: [f64; LANES],
    dy: [f64; LANES],
    live: [bool; LANES],
}

const R2: f64 = PERIODIC_RADIUS * PERIODIC_RADIUS;

/// Groups of [`LANES`] points go through `iterate`, the rest (fewer than a group) through the scalar loop.
#[inline(always)]
fn periodic_rows_body(
    points: &[f64],
    depth: u32,
    mut emit: impl FnMut(usize, f64),
    mut iterate: impl FnMut(&mut Group),
) {
    let groups = points.chunks_exact(2 * LANES);
    let tail = groups.remainder();
    for (k, p) in groups.enumerate() {
        let z = [0.0f64; LANES];
        let mut g = Group { cx: z, cy: z, x: z, y: z, dx: z, dy: z, live: [false; LANES] };
        for l in 0..LANES {
            (g.cx[l], g.cy[l]) = (p[2 * l], p[2 * l + 1]);
            g.live[l] = !surely_inside(g.cx[l], g.cy[l]);
        }
        iterate(&mut g);
        for l in 0..LANES {
            let r2 = g.x[l] * g.x[l] + g.y[l] * g.y[l];
            emit(k * LANES + l, if r2 > R2 { periodic_value(r2, g.dx[l], g.dy[l]) } else { 1.0 });
        }
    }
    let base = (points.len() - tail.len()) / 2;
    for (i, p) in tail.chunks_exact(2).enumerate() {
        emit(base + i, mandelbrot_periodic(p[0], p[1], depth));
    }
}

/// The escape loop of [`periodic_by_iterating`] for every live lane: the same operations in the same order (no
/// fused multiply-adds), so each lane's values are the scalar loop's bit for bit; a lane that escapes keeps the
/// values it escaped with, and the group stops when none is live.
fn iterate_lanes(g: &mut Group, depth: u32) {
    for _ in 0..depth {
        if !g.live.iter().any(|&l| l) {
            break;
        }
        for l in 0..LANES {
            if !g.live[l] {
                continue;
            }
            let (x, y, dx, dy) = (g.x[l], g.y[l], g.dx[l], g.dy[l]);
            g.dx[l] = 2.0 * (x * dx - y * dy) + 1.0;
            g.dy[l] = 2.0 * (x * dy + y * dx);
            g.x[l] = x * x - y * y + g.cx[l];
            g.y[l] = 2.0 * x * y + g.cy[l];
            g.live[l] = g.x[l] * g.x[l] + g.y[l] * g.y[l] <= R2;
        }
    }
}

/// [`iterate_lanes`] in AVX2: two registers of four lanes, whose independent chains of multiplies and adds hide
/// each other's latency. Escaped lanes are frozen by blending the old values back.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn iterate_avx2(g: &mut Group, depth: u32) {
    use std::arch::x86_64::*;
    const H: usize = LANES / 4;
    let load = |a: &[f64; LANES], h: usize| _mm256_loadu_pd(a[4 * h..].as_ptr());
    let (two, one, r2max) = (_mm256_set1_pd(2.0), _mm256_set1_pd(1.0), _mm256_set1_pd(R2));
    let (mut cx, mut cy, mut x, mut y, mut dx, mut dy, mut live) = (
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
        [_mm256_setzero_pd(); H],
    );
    for h in 0..H {
        (cx[h], cy[h], x[h], y[h], dx[h], dy[h]) =
            (load(&g.cx, h), load(&g.cy, h), load(&g.x, h), load(&g.y, h), load(&g.dx, h), load(&g.dy, h));
        let m = |l: usize| if g.live[4 * h + l] { -1i64 } else { 0 };
        live[h] = _mm256_castsi256_pd(_mm256_set_epi64x(m(3), m(2), m(1), m(0)));
    }
    for _ in 0..depth {
        if (0..H).all(|h| _mm256_movemask_pd(live[h]) == 0) {
            break;
        }
        for h in 0..H {
            let dxn = _mm256_add_pd(
                _mm256_mul_pd(two, _mm256_sub_pd(_mm256_mul_pd(x[h], dx[h]), _mm256_mul_pd(y[h], dy[h]))),
                one,
            );
            let dyn_ = _mm256_mul_pd(two, _mm256_add_pd(_mm256_mul_pd(x[h], dy[h]), _mm256_mul_pd(y[h], dx[h])));
            let xn = _mm256_add_pd(_mm256_sub_pd(_mm256_mul_pd(x[h], x[h]), _mm256_mul_pd(y[h], y[h])), cx[h]);
            let yn = _mm256_add_pd(_mm256_mul_pd(_mm256_mul_pd(two, x[h]), y[h]), cy[h]);
            x[h] = _mm256_blendv_pd(x[h], xn, live[h]);
            y[h] = _mm256_blendv_pd(y[h], yn, live[h]);
            dx[h] = _mm256_blendv_pd(dx[h], dxn, live[h]);
            dy[h] = _mm256_blendv_pd(dy[h], dyn_, live[h]);
            let r2 = _mm256_add_pd(_mm256_mul_pd(xn, xn), _mm256_mul_pd(yn, yn));
            live[h] = _mm256_and_pd(live[h], _mm256_cmp_pd::<_CMP_LE_OQ>(r2, r2max));
        }
    }
    for h in 0..H {
        _mm256_storeu_pd(g.x[4 * h..].as_mut_ptr(), x[h]);
        _mm256_storeu_pd(g.y[4 * h..].as_mut_ptr(), y[h]);
        _mm256_storeu_pd(g.dx[4 * h..].as_mut_ptr(), dx[h]);
        _mm256_storeu_pd(g.dy[4 * h..].as_mut_ptr(), dy[h]);
    }
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
            compute(spec.target, spec.depth, &inputs, &mut targets);
            Some(FixedSet { inputs, targets, in_dims: 2, out_dims: 1 })
        };
        let mut rng = rand_pcg::Pcg64::seed_from_u64(EVAL_SEED);
        let mut inputs = vec![0.0f32; 2 * EVAL_POINTS];
        draw_points(&mut rng, &spec.window, &mut inputs);
        let mut targets = vec![0.0f32; EVAL_POINTS];
        compute(spec.target, spec.depth, &inputs, &mut targets);
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
                compute(self.target, self.depth, &inputs[..2 * n], &mut targets[..n]);
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
                compute_f64(self.target, self.depth, &inputs[..2 * n], &mut targets[..n]);
            }
        }
    }
    fn truth_f64(&self, inputs: &[f64], out: &mut [f32]) -> bool {
        let n = (inputs.len() / 2).min(out.len());
        compute_f64(self.target, self.depth, &inputs[..2 * n], &mut out[..n]);
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
        compute(self.target, self.depth, &inputs[..2 * n], &mut out[..n]);
        true
    }
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        let m = mse(pred, target);
        Metrics { mse: m, psnr: Some(psnr_from_mse(m)), mean_sq_dist: None, accuracy: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both builds of the lanes give the scalar loop's values bit for bit: points inside, outside and near the
    /// boundary, lanes that escape at different iterations, and a batch that does not fill its last group.
    #[test]
    fn lanes_match_the_scalar_loop_bit_for_bit() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let mut points: Vec<f64> = Vec::new();
        for _ in 0..3001 {
            points.push(-2.65 + 3.8 * rng.gen::<f64>());
            points.push(-1.2 + 2.4 * rng.gen::<f64>());
        }
        // A seahorse-valley strip: neighbours with very different escape times.
        for k in 0..803 {
            points.extend([-0.7453 + 1e-4 * k as f64, 0.1127]);
        }
        let n = points.len() / 2;
        let scalar: Vec<f64> = points.chunks_exact(2).map(|p| mandelbrot_periodic(p[0], p[1], DEFAULT_DEPTH)).collect();
        let (mut wide, mut base, mut narrow) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f32; n]);
        periodic_rows_f64(&points, DEFAULT_DEPTH, &mut wide);
        periodic_rows_body(&points, DEFAULT_DEPTH, |i, v| base[i] = v, |g| iterate_lanes(g, DEFAULT_DEPTH));
        periodic_rows(&points, DEFAULT_DEPTH, &mut narrow);
        for i in 0..n {
            assert_eq!(wide[i].to_bits(), scalar[i].to_bits(), "point {i}: {:?}", &points[2 * i..2 * i + 2]);
            assert_eq!(base[i].to_bits(), scalar[i].to_bits(), "point {i} (baseline build)");
            assert_eq!(narrow[i], scalar[i] as f32);
        }
        let inside = scalar.iter().filter(|v| **v == 1.0).count();
        assert!(inside > n / 10 && inside < n / 2, "{inside} of {n} points inside");
    }
}
