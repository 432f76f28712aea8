//! The hash grid's share of a challenge step, measured alone: the champion's encoding (8 levels x 4 features,
//! tables of 2^25, finest 65,536) over a batch of 393,216 points drawn as the error-field sampler draws them (90 %
//! from the cells of a 512 x 512 field near the Mandelbrot set's boundary, in cell order, the rest uniform), its
//! forward and its backward with the hashed tables stepped in place.
//!
//!     cargo run --release -p approxlab-engine --example hash_grid_step [-- REPEATS]
//!
//! Prints the median milliseconds of each pass over REPEATS (default 15) batches, on the default thread pool.
//! `TABLE=N` sets the tables to 2^N entries (default 25, the champion's): with `TABLE=12` every level fits in cache,
//! so the passes take only their arithmetic, and the difference to the default is what the cache misses cost.

use approxlab_engine::encoding::{hash_grid::HashGridSpec, BuildContext, EncodingSpec, Mapped};
use approxlab_engine::memory;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const BATCH: usize = 393_216;
const FIELD: usize = 512;
const HARD_SHARE: f64 = 0.9;

/// Whether the centre of field cell (i, j) of the protocol's window escapes late (near the boundary).
fn near_boundary(i: usize, j: usize) -> bool {
    let cx = -2.65 + 3.8 * (i as f64 + 0.5) / FIELD as f64;
    let cy = -1.2 + 2.4 * (j as f64 + 0.5) / FIELD as f64;
    let (mut x, mut y) = (0.0f64, 0.0f64);
    for n in 0..200 {
        if x * x + y * y > 4.0 {
            return n > 8;
        }
        (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
    }
    true
}

fn batch(rng: &mut rand_pcg::Pcg64Mcg) -> Vec<f64> {
    let hard: Vec<(usize, usize)> =
        (0..FIELD).flat_map(|j| (0..FIELD).map(move |i| (i, j))).filter(|&(i, j)| near_boundary(i, j)).collect();
    let n_hard = (BATCH as f64 * HARD_SHARE) as usize;
    let mut points = Vec::with_capacity(2 * BATCH);
    for k in 0..n_hard {
        let (i, j) = hard[k * hard.len() / n_hard];
        points.push((i as f64 + rng.gen::<f64>()) / FIELD as f64);
        points.push((j as f64 + rng.gen::<f64>()) / FIELD as f64);
    }
    for _ in n_hard..BATCH {
        points.push(rng.gen::<f64>());
        points.push(rng.gen::<f64>());
    }
    points
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args().nth(1).map_or(15, |s| s.parse().expect("REPEATS: a count"));
    let table = std::env::var("TABLE").unwrap_or_else(|_| "25".into());
    let spec = HashGridSpec::from_args(&["8", "4", &table, "16", "65536"]).expect("the champion's grid");
    let grid = spec.build(&BuildContext { input_dims: 2, seed: 1, max_features: 1 << 20 }).expect("builds");
    println!("{}", grid.describe());
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
    let mut params = memory::zeroed(grid.n_params());
    grid.init_params(&mut params, &mut approxlab_engine::rng::seeded(3));
    let mut grads = memory::zeroed_except(grid.n_params(), grid.hashed_params());
    let width = grid.output_dims();
    let mut out = vec![0.0f32; BATCH * width];
    let grad_out: Vec<f32> = (0..BATCH * width).map(|_| rng.gen_range(-1e-6f32..1e-6)).collect();
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    for r in 0..repeats + 2 {
        let x = batch(&mut rng);
        let t = Instant::now();
        grid.forward_f64(&params, &x, &mut out);
        let f = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        grid.backward_stepping_hashed(&mut params, Mapped::F64(&x), &grad_out, &mut grads, 15.0);
        let b = t.elapsed().as_secs_f64() * 1e3;
        if r >= 2 {
            forward.push(f);
            backward.push(b);
        }
    }
    // The same passes chunk by chunk (forward then backward of each chunk), as a step cut into chunks would run
    // them: how much of the backward is its cache misses, which a chunk's forward has just taken.
    let chunk: usize = std::env::var("CHUNK").ok().map_or(16384, |s| s.parse().expect("CHUNK: a count"));
    let mut chunked = Vec::new();
    for _ in 0..repeats {
        let x = batch(&mut rng);
        let t = Instant::now();
        for (x, (o, g)) in x.chunks(2 * chunk).zip(out.chunks_mut(chunk * width).zip(grad_out.chunks(chunk * width))) {
            grid.forward_f64(&params, x, o);
            grid.backward_stepping_hashed(&mut params, Mapped::F64(x), g, &mut grads, 15.0);
        }
        chunked.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("chunks of {chunk}: forward and backward {:.1} ms", median(chunked));
    let checksum: f64 = out.iter().map(|&v| v as f64).sum();
    println!(
        "batch {BATCH}: forward {:.1} ms, backward {:.1} ms (median of {repeats}; checksum {checksum:.6e})",
        median(forward),
        median(backward)
    );
}
