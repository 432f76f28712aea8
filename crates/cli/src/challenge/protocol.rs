//! The Mandelbrot challenge's protocol (docs/challenge.md): the target, the window, the score grid, the public
//! zoom windows, and the scorer. Everything here is fixed: entries differ only in how they train.

use anyhow::{bail, Result};
use approxlab_data::{periodic_rows_f64, DataSpec, MandelbrotSpec, MandelbrotTarget, MANDELBROT_WINDOW};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub const DEPTH: u32 = 200;
/// `[x0, x1, y0, y1]`.
pub const WINDOW: [f64; 4] = MANDELBROT_WINDOW;
/// The score grid over [`WINDOW`], endpoints included, top row at y = y1.
pub const GRID: (usize, usize) = (3840, 2425);
/// Zoom windows are scored on this grid (square pixels: the height follows from the width).
pub const ZOOM_GRID: (usize, usize) = (960, 540);
/// Boundary points: those whose target lies strictly inside this range (neither the flat inside, 1, nor the
/// smoothest outside).
pub const BOUNDARY: (f64, f64) = (0.05, 0.999);
pub const PSNR_CAP: f64 = 100.0;

/// A zoom window: centre and width in the complex plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zoom {
    pub name: String,
    pub cx: f64,
    pub cy: f64,
    pub width: f64,
}

/// The public zoom windows, from wide to deep, spread along the boundary.
pub const PUBLIC_ZOOMS: [(&str, f64, f64, f64); 6] = [
    ("seahorse-valley", -0.7453, 0.1127, 0.1),
    ("elephant-valley", 0.2850, 0.0110, 0.03),
    ("antenna-minibrot", -1.7492, 0.0, 0.01),
    ("triple-spiral", -0.0880, 0.6540, 3e-3),
    ("seahorse-spiral", -0.743_643_887, 0.131_825_904, 1e-3),
    ("seahorse-spiral-deep", -0.743_643_887, 0.131_825_904, 1e-4),
];

impl Zoom {
    pub fn public() -> Vec<Zoom> {
        PUBLIC_ZOOMS.iter().map(|&(name, cx, cy, width)| Zoom { name: name.into(), cx, cy, width }).collect()
    }

    /// `CX,CY,WIDTH` from the command line, or the name of a public window.
    pub fn parse(s: &str) -> Result<Zoom> {
        if let Some(z) = Zoom::public().into_iter().find(|z| z.name == s.trim()) {
            return Ok(z);
        }
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let names: Vec<&str> = PUBLIC_ZOOMS.iter().map(|z| z.0).collect();
        let [cx, cy, w] = parts[..] else {
            bail!("--zoom '{s}': expected CX,CY,WIDTH such as -0.7436,0.1318,1e-3, or one of: {}", names.join(", "))
        };
        let num = |v: &str, what: &str| -> Result<f64> {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => bail!("--zoom '{s}': {what} must be a finite number, got '{v}'"),
            }
        };
        let (cx, cy, width) = (num(cx, "CX")?, num(cy, "CY")?, num(w, "WIDTH")?);
        if width <= 0.0 {
            bail!("--zoom '{s}': WIDTH must be above 0, got {width}");
        }
        if width < 1e-12 {
            bail!("--zoom '{s}': WIDTH {width} is below 1e-12, where even f64 coordinates run out of digits");
        }
        Ok(Zoom { name: format!("{cx},{cy},{width}"), cx, cy, width })
    }

    /// The window `[x0, x1, y0, y1]` at `size`, square pixels.
    pub fn window(&self, size: (usize, usize)) -> [f64; 4] {
        let height = self.width * (size.1 - 1) as f64 / (size.0 - 1) as f64;
        [self.cx - self.width / 2.0, self.cx + self.width / 2.0, self.cy - height / 2.0, self.cy + height / 2.0]
    }
}

/// The protocol's data set: the periodic target at depth 200 over the challenge window, drawn uniformly on the fly.
pub fn data_spec() -> DataSpec {
    DataSpec::Mandelbrot(MandelbrotSpec {
        window: WINDOW,
        depth: DEPTH,
        target: MandelbrotTarget::Periodic,
        samples: None,
        on_the_fly: true,
    })
}

/// Whether a run's data is the protocol's target (sampled on the fly or not: a fixed sample of it is allowed).
pub fn is_protocol_target(spec: &DataSpec) -> bool {
    matches!(spec, DataSpec::Mandelbrot(m) if m.window == WINDOW && m.depth == DEPTH && m.target == MandelbrotTarget::Periodic)
}

/// The grid points of `window` at `size`, endpoints included, row by row from the top: f64 coordinates.
pub fn grid_point(window: [f64; 4], size: (usize, usize), i: usize) -> (f64, f64) {
    let [x0, x1, y0, y1] = window;
    let (col, row) = (i % size.0, i / size.0);
    let x = x0 + (x1 - x0) * col as f64 / (size.0 - 1).max(1) as f64;
    let y = y1 - (y1 - y0) * row as f64 / (size.1 - 1).max(1) as f64;
    (x, y)
}

/// The grid points (f64, as the model reads them) and the f64 truth at each.
pub fn grid(window: [f64; 4], size: (usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let n = size.0 * size.1;
    let mut inputs = vec![0.0f64; 2 * n];
    let mut truth = vec![0.0f64; n];
    inputs.par_chunks_mut(2 * 1024).zip(truth.par_chunks_mut(1024)).enumerate().for_each(|(chunk, (xy, t))| {
        for (k, p) in xy.chunks_exact_mut(2).enumerate() {
            (p[0], p[1]) = grid_point(window, size, chunk * 1024 + k);
        }
        periodic_rows_f64(xy, DEPTH, t);
    });
    (inputs, truth)
}

/// A score on one grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GridScore {
    pub mse: f64,
    /// `10 log10(1 / mse)`, at most 100.
    pub psnr: f64,
    /// MSE over the points whose target lies in the boundary range (`None` where there are none).
    pub boundary_mse: Option<f64>,
    /// Share of the grid's points that are boundary points.
    pub boundary_share: f64,
}

pub fn psnr(mse: f64) -> f64 {
    if mse <= 0.0 {
        PSNR_CAP
    } else {
        (10.0 * (1.0 / mse).log10()).min(PSNR_CAP)
    }
}

/// Scores predictions against the f64 truth, summing in f64 in a fixed order.
pub fn score(pred: &[f32], truth: &[f64]) -> GridScore {
    let (sum, bsum, bn) = pred
        .par_chunks(4096)
        .zip(truth.par_chunks(4096))
        .map(|(p, t)| {
            let mut acc = (0.0f64, 0.0f64, 0usize);
            for (p, t) in p.iter().zip(t) {
                let e = (*p as f64 - t).powi(2);
                acc.0 += e;
                if *t > BOUNDARY.0 && *t < BOUNDARY.1 {
                    acc.1 += e;
                    acc.2 += 1;
                }
            }
            acc
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold((0.0, 0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let mse = sum / truth.len().max(1) as f64;
    GridScore {
        mse,
        psnr: psnr(mse),
        boundary_mse: (bn > 0).then(|| bsum / bn as f64),
        boundary_share: bn as f64 / truth.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approxlab_data::mandelbrot_periodic;

    /// A tiny grid worked out here point by point, independently of `grid` and `score`.
    #[test]
    fn the_scorer_matches_a_grid_computed_by_hand() {
        let window = [-2.0, 1.0, -1.0, 1.0];
        let size = (4, 3);
        let (inputs, truth) = grid(window, size);
        // Columns at x = -2, -1, 0, 1 and rows at y = 1, 0, -1 (top first).
        let xs = [-2.0, -1.0, 0.0, 1.0];
        let ys = [1.0, 0.0, -1.0];
        for (i, t) in truth.iter().enumerate() {
            let (x, y) = (xs[i % 4], ys[i / 4]);
            assert_eq!((inputs[2 * i], inputs[2 * i + 1]), (x, y));
            assert_eq!(*t, mandelbrot_periodic(x, y, DEPTH), "point {i}");
        }
        // (0, 0) and (-1, 0) are inside the set: 1.
        assert_eq!(truth[4 + 2], 1.0);
        assert_eq!(truth[4 + 1], 1.0);
        let pred: Vec<f32> = truth.iter().map(|t| (*t as f32 - 0.1).max(0.0)).collect();
        let s = score(&pred, &truth);
        let by_hand: f64 = pred.iter().zip(&truth).map(|(p, t)| (*p as f64 - t).powi(2)).sum::<f64>() / 12.0;
        assert!((s.mse - by_hand).abs() < 1e-15);
        assert!((s.psnr - 10.0 * (1.0 / by_hand).log10()).abs() < 1e-9);
        let boundary: Vec<usize> = (0..12).filter(|&i| truth[i] > 0.05 && truth[i] < 0.999).collect();
        let b = boundary.iter().map(|&i| (pred[i] as f64 - truth[i]).powi(2)).sum::<f64>() / boundary.len() as f64;
        assert!((s.boundary_mse.unwrap() - b).abs() < 1e-15);
        assert_eq!(score(&[1.0], &[1.0]).psnr, PSNR_CAP, "a perfect score is capped");
    }

    #[test]
    fn zoom_windows_have_square_pixels_and_parse() {
        let z = Zoom::parse("-0.5,0.25,0.9").unwrap();
        let [x0, x1, y0, y1] = z.window((10, 4));
        assert!(((x1 - x0) / 9.0 - (y1 - y0) / 3.0).abs() < 1e-15);
        assert!(((x0 + x1) / 2.0 + 0.5).abs() < 1e-15 && ((y0 + y1) / 2.0 - 0.25).abs() < 1e-15);
        assert_eq!(Zoom::parse("seahorse-spiral").unwrap().width, 1e-3);
        for bad in ["1,2", "1,2,0", "1,2,-1", "a,2,3", "1,2,inf", "nowhere"] {
            assert!(Zoom::parse(bad).is_err(), "{bad}");
        }
    }
}
