//! Error-driven sampling: a coarse field of the model's recent squared error over the input domain, `grid` cells per
//! dimension, fed by the predictions on every batch; a share of each batch is drawn from cells in proportion to
//! their error, the rest as the default sampler draws it. Any data set can use it (the field coarsens with the
//! dimension: [`super::field_grid`]):
//!
//! - sampled on the fly (the Mandelbrot set, curves): a hard point is uniform within its cell, and its target comes
//!   from the data set's truth function, as any point a method chooses to ask about;
//! - a fixed training set (image pixels, with or without held-out ones, a CSV table): a hard point is a random
//!   training point of its cell, so held-out points are never seen.
//!
//! Unvisited cells start at an error of 1 (above any squared error of targets in [0, 1]), so the first batches
//! explore the whole domain. The field is not part of the checkpoint: a resumed run rebuilds it within a few
//! batches.

use super::{Sampler, Uniform};
use anyhow::{bail, Result};
use approxlab_data::Dataset;
use approxlab_engine::rng::Rng;
use rand::Rng as _;
use rayon::prelude::*;
use std::sync::Arc;

/// Weight of a cell's previous estimate when a batch brings new samples of it.
const DECAY: f32 = 0.5;

/// Rows per chunk of a batch's hard draws. Each chunk draws from its own stream, so that the chunks run on every core
/// (drawn serially, the hard share of the champion's batch left one core idle for about 4 % of a step) and the batch
/// is the same whatever the thread count. A fixed training set's draws (a random point of each drawn cell) stay serial.
const DRAW_CHUNK: usize = 8192;

/// One batch's random streams, one per chunk of rows, seeded from the field's own stream.
struct Streams(u64);

impl Streams {
    fn new(rng: &mut Rng) -> Streams {
        Streams(rng.gen())
    }

    fn chunk(&self, j: usize) -> Rng {
        approxlab_engine::rng::seeded(self.0 ^ (j as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

pub struct ErrorFieldSampler {
    data: Arc<dyn Dataset>,
    uniform: Uniform,
    /// The field's own stream, so that the uniform part draws exactly what the default sampler would.
    rng: Rng,
    share: f64,
    /// A cell's weight is its error to this power.
    power: f64,
    grid: usize,
    dims: usize,
    lo: Vec<f64>,
    width: Vec<f64>,
    error: Vec<f32>,
    /// This batch's squared-error sum and sample count per cell, and the cells it touched.
    sum: Vec<f32>,
    count: Vec<u32>,
    touched: Vec<u32>,
    cdf: Vec<f64>,
    /// This batch's drawn cells, in cell order.
    drawn: Vec<u32>,
    /// Fixed training set: its points grouped by cell (`start[c]..start[c + 1]` in `order`).
    buckets: Option<(Vec<u32>, Vec<u32>)>,
}

impl ErrorFieldSampler {
    pub fn new(data: Arc<dyn Dataset>, seed: u64, batch: usize, share: f64, grid: usize) -> Result<Self> {
        let dims = data.input_dims();
        let cells = grid.pow(dims as u32);
        let has_truth = data.has_truth();
        if data.training_points().is_none() && !has_truth {
            bail!("sampler error_field: {} has neither a fixed training set nor a truth function to ask", data.name());
        }
        let lo: Vec<f64> = data.domain().iter().map(|d| d.0).collect();
        let width: Vec<f64> = data.domain().iter().map(|d| d.1 - d.0).collect();
        let mut s = ErrorFieldSampler {
            uniform: Uniform::new(data.clone(), seed),
            rng: approxlab_engine::rng::derived(seed, "error field"),
            share,
            power: 1.0,
            grid,
            dims,
            lo,
            width,
            error: vec![1.0; cells],
            sum: vec![0.0; cells],
            count: vec![0; cells],
            touched: Vec::with_capacity(batch.min(cells)),
            cdf: vec![0.0; cells],
            drawn: Vec::with_capacity(batch),
            buckets: None,
            data,
        };
        if let Some((xs, _)) = s.data.training_points() {
            s.buckets = Some(s.bucket(xs));
        }
        Ok(s)
    }

    /// Weights cells by their error to `power` instead of the error itself.
    pub fn with_power(mut self, power: f64) -> Self {
        self.power = power;
        self
    }

    fn cell_of<T: Into<f64> + Copy>(&self, x: &[T]) -> usize {
        let (mut cell, mut stride) = (0usize, 1usize);
        for ((x, lo), width) in x.iter().zip(&self.lo).zip(&self.width).take(self.dims) {
            let u = ((*x).into() - lo) / width;
            let i = ((u * self.grid as f64) as isize).clamp(0, self.grid as isize - 1) as usize;
            cell += i * stride;
            stride *= self.grid;
        }
        cell
    }

    /// Counting sort of the training points by cell.
    fn bucket(&self, xs: &[f32]) -> (Vec<u32>, Vec<u32>) {
        let cells = self.error.len();
        let mut start = vec![0u32; cells + 1];
        let of: Vec<usize> = xs.chunks_exact(self.dims).map(|x| self.cell_of(x)).collect();
        for &c in &of {
            start[c + 1] += 1;
        }
        for c in 0..cells {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let mut order = vec![0u32; of.len()];
        for (i, &c) in of.iter().enumerate() {
            order[next[c] as usize] = i as u32;
            next[c] += 1;
        }
        (start, order)
    }

    /// The cumulative weights of the cells: their error to `power`, and zero for cells with no training points.
    fn build_cdf(&mut self) {
        let power = self.power;
        let weight = |e: f32| {
            if power == 1.0 {
                e as f64
            } else if power == 0.5 {
                // The common other choice, without a `powf` per cell.
                (e as f64).sqrt()
            } else {
                (e as f64).powf(power)
            }
        };
        let mut total = 0.0f64;
        for c in 0..self.error.len() {
            let empty = self.buckets.as_ref().is_some_and(|(start, _)| start[c] == start[c + 1]);
            total += if empty { 0.0 } else { weight(self.error[c]) };
            self.cdf[c] = total;
        }
    }

    /// Draws `rows` cells in proportion to the field, in cell order. Stratified: one uniform draw in each of `rows`
    /// equal slices of the cumulative weight, so a cell's count is less than two from its expected count (independent
    /// draws would scatter it by its square root), in one pass over the field per chunk of rows (after one search
    /// for the chunk's first cell) instead of a search per point. A batch in cell order also makes the model's table
    /// lookups of neighbouring points hit the same cache lines (a batch is a sum, so its order changes no gradient
    /// beyond rounding).
    fn draw_cells(&mut self, rows: usize) {
        self.build_cdf();
        let total = *self.cdf.last().unwrap_or(&0.0);
        let last = self.cdf.len() - 1;
        let cdf = &self.cdf;
        let streams = Streams::new(&mut self.rng);
        self.drawn.resize(rows, 0);
        self.drawn.par_chunks_mut(DRAW_CHUNK).enumerate().for_each(|(j, drawn)| {
            let mut rng = streams.chunk(j);
            let first = j * DRAW_CHUNK;
            // Where a scan from the first cell would stand at this chunk, or before: the first cell whose cumulative
            // weight passes the chunk's lowest possible draw (the weights only grow), so the scan below ends where
            // the serial one would.
            let mut c = cdf.partition_point(|&w| w <= first as f64 / rows as f64 * total);
            for (i, cell) in (first..).zip(drawn.iter_mut()) {
                let u = (i as f64 + rng.gen::<f64>()) / rows as f64 * total;
                while c < last && cdf[c] <= u {
                    c += 1;
                }
                *cell = c.min(last) as u32;
            }
        });
    }

    fn fill_hard(&mut self, inputs: &mut [f64], targets: &mut [f32]) {
        let (d, o) = (self.dims, self.data.output_dims());
        self.draw_cells(inputs.len() / d);
        match self.buckets.take() {
            Some((start, order)) => {
                let data = self.data.clone();
                let (xs, ys) = data.training_points().expect("a bucketed data set has training points");
                for ((x, y), &c) in inputs.chunks_exact_mut(d).zip(targets.chunks_exact_mut(o)).zip(&self.drawn) {
                    let (a, b) = (start[c as usize] as usize, start[c as usize + 1] as usize);
                    // Every cell with weight has points; the fallback only guards a field that is all zero.
                    let i = if b > a {
                        order[self.rng.gen_range(a..b)] as usize
                    } else {
                        self.rng.gen_range(0..xs.len() / d)
                    };
                    x.iter_mut().zip(&xs[i * d..(i + 1) * d]).for_each(|(x, v)| *x = *v as f64);
                    y.copy_from_slice(&ys[i * o..(i + 1) * o]);
                }
                self.buckets = Some((start, order));
            }
            None => {
                let (grid, lo, width) = (self.grid, &self.lo, &self.width);
                let streams = Streams::new(&mut self.rng);
                inputs.par_chunks_mut(DRAW_CHUNK * d).zip(self.drawn.par_chunks(DRAW_CHUNK)).enumerate().for_each(
                    |(j, (inputs, drawn))| {
                        let mut rng = streams.chunk(j);
                        for (x, &c) in inputs.chunks_exact_mut(d).zip(drawn) {
                            let mut c = c as usize;
                            for (k, x) in x.iter_mut().enumerate() {
                                let i = c % grid;
                                c /= grid;
                                let u = (i as f64 + rng.gen::<f64>()) / grid as f64;
                                *x = lo[k] + width[k] * u;
                            }
                        }
                    },
                );
                self.data.truth_f64(inputs, targets);
            }
        }
    }
}

impl Sampler for ErrorFieldSampler {
    fn describe(&self) -> String {
        let cells = vec![self.grid.to_string(); self.dims].join("x");
        let weight = if self.power == 1.0 { String::new() } else { format!(" (weights: error^{})", self.power) };
        format!(
            "error field of {cells} cells{weight} for {:.0}% of each batch, the rest {}",
            100.0 * self.share,
            self.uniform.describe()
        )
    }

    fn fill(&mut self, step: u64, rng: &mut Rng, inputs: &mut [f64], targets: &mut [f32]) {
        let (d, o) = (self.dims, self.data.output_dims());
        let rows = inputs.len() / d;
        let hard = ((rows as f64 * self.share).round() as usize).min(rows);
        let uniform = rows - hard;
        let (ui, hi) = inputs.split_at_mut(uniform * d);
        let (ut, ht) = targets.split_at_mut(uniform * o);
        if uniform > 0 {
            self.uniform.fill(step, rng, ui, ut);
        }
        if hard > 0 {
            self.fill_hard(hi, ht);
        }
    }

    fn feedback(&mut self, inputs: &[f64], targets: &[f32], predictions: &[f32]) {
        let (d, o) = (self.dims, self.data.output_dims());
        for ((x, t), p) in inputs.chunks_exact(d).zip(targets.chunks_exact(o)).zip(predictions.chunks_exact(o)) {
            let c = self.cell_of(x);
            let e: f32 = t.iter().zip(p).map(|(t, p)| (t - p) * (t - p)).sum();
            if self.count[c] == 0 {
                self.touched.push(c as u32);
            }
            self.sum[c] += e;
            self.count[c] += 1;
        }
        for &c in &self.touched {
            let c = c as usize;
            let mean = self.sum[c] / self.count[c] as f32;
            self.error[c] = DECAY * self.error[c] + (1.0 - DECAY) * mean;
            self.sum[c] = 0.0;
            self.count[c] = 0;
        }
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approxlab_data::DataSpec;

    fn mandelbrot() -> Arc<dyn Dataset> {
        let spec = DataSpec::parse("mandelbrot:periodic").unwrap();
        let mut spec = serde_json::to_value(&spec).unwrap();
        spec["on_the_fly"] = serde_json::json!(true);
        let spec: DataSpec = serde_json::from_value(spec).unwrap();
        Arc::from(spec.build(0).unwrap())
    }

    /// With all of the error in one cell, the hard share lands in it and the uniform share spreads over the domain.
    #[test]
    fn hard_share_goes_where_the_error_is_and_the_rest_is_uniform() {
        let data = mandelbrot();
        let (batch, grid) = (20_000, 8);
        let mut s = ErrorFieldSampler::new(data.clone(), 1, batch, 0.75, grid).unwrap();
        s.error.fill(0.0);
        s.error[3 + 5 * grid] = 1.0;
        let (mut x, mut y) = (vec![0.0f64; 2 * batch], vec![0.0f32; batch]);
        s.fill(0, &mut approxlab_engine::rng::seeded(2), &mut x, &mut y);
        let in_hot = |rows: &[f64]| rows.chunks_exact(2).filter(|p| s.cell_of(p) == 3 + 5 * grid).count();
        let uniform = batch / 4;
        assert_eq!(in_hot(&x[2 * uniform..]), batch - uniform, "every hard point is in the hot cell");
        let share = in_hot(&x[..2 * uniform]) as f64 / uniform as f64;
        assert!((share - 1.0 / 64.0).abs() < 0.01, "uniform points fall in the cell at its area, got {share}");
        // Targets come from the truth function at the drawn points.
        let mut truth = vec![0.0f32; batch];
        data.truth_f64(&x, &mut truth);
        assert_eq!(y, truth);
    }

    /// Stratified draws: every cell gets its expected share of the hard points to within two points, in cell order;
    /// 10,000 rows are two chunks of draws, the second starting from its own search.
    #[test]
    fn each_cell_gets_its_share_of_the_hard_points_to_within_two() {
        let (batch, grid) = (10_000, 4);
        let mut s = ErrorFieldSampler::new(mandelbrot(), 3, batch, 1.0, grid).unwrap();
        // Weights 0, 1, ..., 15: cell 0 gets nothing, cell 15 a share of 15/120.
        s.error.iter_mut().enumerate().for_each(|(c, e)| *e = c as f32);
        s.draw_cells(batch);
        assert!(s.drawn.windows(2).all(|w| w[0] <= w[1]), "cells come in order");
        for c in 0..grid * grid {
            let got = s.drawn.iter().filter(|&&d| d as usize == c).count() as f64;
            let expected = batch as f64 * c as f64 / 120.0;
            assert!((got - expected).abs() < 2.0, "cell {c}: {got} points, expected {expected}");
        }
    }

    /// The hard draws run in chunks on every core, each chunk from its own stream: a batch of several chunks, from a
    /// field that is not flat, is the same to the bit on one thread and on three, its cells in order across the
    /// chunks. (That each chunk starts at the right cell is what the stratified counts above check across a chunk's
    /// end.)
    #[test]
    fn a_batch_is_the_same_whatever_the_thread_count() {
        let batch = 5 * DRAW_CHUNK / 2;
        let draw = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut s = ErrorFieldSampler::new(mandelbrot(), 9, batch, 0.9, 16).unwrap();
                s.error.iter_mut().enumerate().for_each(|(c, e)| *e = ((c * 7919) % 13) as f32);
                let mut rng = approxlab_engine::rng::seeded(4);
                let (mut x, mut y) = (vec![0.0f64; 2 * batch], vec![0.0f32; batch]);
                s.fill(0, &mut rng, &mut x, &mut y);
                (x, y, s.drawn.clone())
            })
        };
        let (one, three) = (draw(1), draw(3));
        assert!(one.0.iter().zip(&three.0).all(|(a, b)| a.to_bits() == b.to_bits()), "the same points");
        assert_eq!(one.1, three.1);
        assert_eq!(one.2, three.2);
        assert!(one.2.windows(2).all(|w| w[0] <= w[1]), "cells in order across the chunks");
    }

    /// With power 0.5 a cell's share follows the root of its error: errors 1, 4 and 9 draw 1 : 2 : 3.
    #[test]
    fn power_one_half_draws_in_proportion_to_the_root_of_the_error() {
        let batch = 6000;
        let mut s = ErrorFieldSampler::new(mandelbrot(), 3, batch, 1.0, 2).unwrap().with_power(0.5);
        s.error.copy_from_slice(&[0.0, 1.0, 4.0, 9.0]);
        s.draw_cells(batch);
        let counts: Vec<usize> = (0..4).map(|c| s.drawn.iter().filter(|&&d| d == c).count()).collect();
        for (got, want) in counts.iter().zip([0.0, 1000.0, 2000.0, 3000.0]) {
            assert!((*got as f64 - want).abs() < 2.0, "counts {counts:?}, expected 0, 1000, 2000, 3000");
        }
    }

    /// A fixed training set: hard points are training points of the hot cell, never other points.
    #[test]
    fn hard_points_of_a_fixed_set_are_its_training_points_in_the_hot_cell() {
        let spec = DataSpec::parse("mandelbrot:periodic").unwrap();
        let mut spec = serde_json::to_value(&spec).unwrap();
        spec["samples"] = serde_json::json!(5000);
        let data: Arc<dyn Dataset> = Arc::from(serde_json::from_value::<DataSpec>(spec).unwrap().build(0).unwrap());
        let (batch, grid) = (2000, 4);
        let mut s = ErrorFieldSampler::new(data.clone(), 1, batch, 0.5, grid).unwrap();
        s.error.fill(0.0);
        s.error[5] = 1.0;
        let (mut x, mut y) = (vec![0.0f64; 2 * batch], vec![0.0f32; batch]);
        s.fill(0, &mut approxlab_engine::rng::seeded(2), &mut x, &mut y);
        let (xs, ys) = data.training_points().unwrap();
        let training: std::collections::HashMap<(u32, u32), f32> =
            xs.chunks_exact(2).zip(ys).map(|(p, t)| ((p[0].to_bits(), p[1].to_bits()), *t)).collect();
        for (p, t) in x.chunks_exact(2).zip(&y) {
            let key = ((p[0] as f32).to_bits(), (p[1] as f32).to_bits());
            assert_eq!(
                training.get(&key),
                Some(t),
                "every point, uniform or hard, is a training point with its target"
            );
        }
        let hard = &x[batch..];
        assert!(hard.chunks_exact(2).all(|p| s.cell_of(p) == 5), "hard points lie in the hot cell");
        let uniform_in_hot = x[..batch].chunks_exact(2).filter(|p| s.cell_of(p) == 5).count();
        assert!(uniform_in_hot < batch / 2 / 4, "the uniform half is not drawn to the hot cell: {uniform_in_hot}");
    }

    #[test]
    fn feedback_moves_the_field_towards_the_batch_error() {
        let data = mandelbrot();
        let mut s = ErrorFieldSampler::new(data, 1, 4, 0.5, 4).unwrap();
        // Two points in the first cell (x near -2.65, y near -1.2) with squared errors 0.04 and 0.0.
        let x = [-2.6f64, -1.1, -2.6, -1.15];
        s.feedback(&x, &[0.2, 0.5], &[0.0, 0.5]);
        let c = s.cell_of(&x[..2]);
        assert!((s.error[c] - (0.5 * 1.0 + 0.5 * 0.02)).abs() < 1e-6, "{}", s.error[c]);
        assert!(s.error.iter().enumerate().all(|(i, e)| i == c || *e == 1.0));
    }
}
