//! What a perfect fit at a given grid resolution would score on the Mandelbrot protocol's full grid (3840 x 2425,
//! `mandelbrot:periodic`, depth 200): an upper bound of sorts for a model whose finest cells have that size.
//!
//!     cargo run --release -p approxlab-data --example oracle -- 16384 32768 65536
//!
//! For each resolution R (cells per axis over the window) it prints two scores:
//! - "bilinear": the truth at the R x R lattice's vertices, interpolated bilinearly to the scoring points;
//! - "box mean": each scoring point predicted by the mean of the truth over a box of one cell around it (K jittered
//!   points, K = 16: the sampling noise of that mean costs a little), what a local average at that scale gives.
//!
//! docs/challenge.md reads these against the champion's scores.

use approxlab_data::{periodic_rows_f64, MANDELBROT_WINDOW};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

const GRID: (usize, usize) = (3840, 2425);
const DEPTH: u32 = 200;
const BOX_POINTS: usize = 16;

fn main() {
    let mut resolutions = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(r) if (1..=1 << 20).contains(&r) => resolutions.push(r),
            _ => {
                eprintln!("error: resolution '{arg}': expected a whole number of cells per axis, 1 to 1048576");
                std::process::exit(2);
            }
        }
    }
    if resolutions.is_empty() {
        eprintln!("error: no resolution given; expected e.g. `-- 16384 32768 65536`");
        std::process::exit(2);
    }
    let [x0, x1, y0, y1] = MANDELBROT_WINDOW;
    let (w, h) = GRID;
    let mut points = Vec::with_capacity(w * h * 2);
    for j in 0..h {
        let y = y1 - (y1 - y0) * j as f64 / (h - 1) as f64;
        for i in 0..w {
            points.push(x0 + (x1 - x0) * i as f64 / (w - 1) as f64);
            points.push(y);
        }
    }
    let truth = targets(&points);
    let psnr = |se: f64| 10.0 * ((w * h) as f64 / se).log10();
    for r in resolutions {
        let (cx, cy) = ((x1 - x0) / r as f64, (y1 - y0) / r as f64);
        let mut corners = Vec::with_capacity(w * h * 8);
        let mut fractions = Vec::with_capacity(w * h * 2);
        let mut jittered = Vec::with_capacity(w * h * 2 * BOX_POINTS);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(r as u64);
        let mut jitter = || rng.gen_range(-0.5..0.5);
        for p in points.chunks_exact(2) {
            let (fx, fy) = ((p[0] - x0) / cx, (p[1] - y0) / cy);
            let (ix, iy) = (fx.floor().min(r as f64 - 1.0), fy.floor().min(r as f64 - 1.0));
            fractions.extend([fx - ix, fy - iy]);
            for (dx, dy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                corners.extend([x0 + (ix + dx) * cx, y0 + (iy + dy) * cy]);
            }
            for _ in 0..BOX_POINTS {
                jittered.extend([p[0] + cx * jitter(), p[1] + cy * jitter()]);
            }
        }
        let at_corners = targets(&corners);
        let errors: Vec<f64> = truth
            .iter()
            .zip(at_corners.chunks_exact(4))
            .zip(fractions.chunks_exact(2))
            .map(|((t, c), f)| {
                let (a, b) = (f[0], f[1]);
                let v = c[0] * (1.0 - a) * (1.0 - b) + c[1] * a * (1.0 - b) + c[2] * (1.0 - a) * b + c[3] * a * b;
                (v - t).powi(2)
            })
            .collect();
        let bilinear: f64 = errors.iter().sum();
        let large: Vec<f64> = errors.iter().copied().filter(|e| *e > 0.01).collect();
        let boxed: f64 = truth
            .iter()
            .zip(targets(&jittered).chunks_exact(BOX_POINTS))
            .map(|(t, around)| (around.iter().sum::<f64>() / BOX_POINTS as f64 - t).powi(2))
            .sum();
        println!(
            "R {r:>7}: bilinear {:.2} dB ({:.0} % of its squared error on the {:.2} % of pixels it misses by over 0.1), \
             box mean {:.2} dB (cells of {:.2} x {:.2} scoring pixels)",
            psnr(bilinear),
            100.0 * large.iter().sum::<f64>() / bilinear,
            100.0 * large.len() as f64 / errors.len() as f64,
            psnr(boxed),
            cx / ((x1 - x0) / (w - 1) as f64),
            cy / ((y1 - y0) / (h - 1) as f64)
        );
    }
}

fn targets(points: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0f64; points.len() / 2];
    points.par_chunks(2 * 4096).zip(out.par_chunks_mut(4096)).for_each(|(p, o)| periodic_rows_f64(p, DEPTH, o));
    out
}
