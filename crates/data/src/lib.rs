//! Data sets of approxlab: a target function, a domain and a sampler.
//!
//! Every data set implements [`Dataset`]. Data sets are described by a [`DataSpec`] (from TOML or
//! from a short CLI form, see [`DataSpec::parse`]) and built with [`DataSpec::build`]. This crate
//! knows nothing about the training engine: it hands out plain `f32` rows.
//!
//! # CLI forms
//!
//! `mandelbrot`, `mandelbrot:smooth`, `mandelbrot:periodic`, `image:PATH`, `curve`,
//! `curve:NAME_OR_EXPR`, `curve:csv:PATH`, `surface:sphere`, `surface:shell`, `surface:torus`.
//!
//! # TOML (`kind` selects the variant; unknown fields are rejected)
//!
//! ```toml
//! kind = "curve"        # target = "waves" | any named curve | expression in x
//!                       # csv = "pts.csv"   domain = [-3.14, 3.14]   samples = 300   noise = 0.0
//! kind = "image"        # path = "a.png"   color = "auto"|"gray"|"rgb"   max_size = 256   holdout = false
//! kind = "surface"      # shape = "sphere"|"shell"|"torus"  samples = 1000 (shell 3000)
//!                       # radius = 3 (sphere)   major_radius = 2, minor_radius = 0.8 (torus)
//!                       # or x = "..", y = "..", z = ".." in u, v with u = [0, 6.28], v = [0, 6.28]
//! kind = "mandelbrot"   # window = [-2.65, 1.15, -1.2, 1.2]   depth = 200
//!                       # target = "smooth"|"periodic"   samples = 100000 | on_the_fly = true
//! ```
//!
//! User expressions: see the grammar in `expr.rs` (`-x^2` is `-(x^2)`, `3x` is `3*x`, functions
//! such as `sin exp ln sqrt abs min max`, constants `pi e tau`).

mod curve;
mod error;
mod expr;
mod fixed;
mod image_data;
mod mandelbrot;
mod spec;
mod surface;

use std::borrow::Cow;

pub use curve::{CurveDataset, CurveSpec, NamedCurve, CURVE_DOMAIN, NAMED_CURVES};
pub use error::DataError;
pub use image_data::{ColorMode, ImageDataset, ImageSpec};
pub use mandelbrot::{
    mandelbrot_periodic, mandelbrot_smooth, MandelbrotDataset, MandelbrotSpec, MandelbrotTarget, MANDELBROT_WINDOW,
};
pub use spec::DataSpec;
pub use surface::{SurfaceDataset, SurfaceShape, SurfaceSpec};

/// Seed of the evaluation sets that are random samples (Mandelbrot, surfaces). It does not depend
/// on the training seed so that runs with different seeds are scored on the same points.
pub const EVAL_SEED: u64 = 0x5eed_e7a1_0000_0001;

/// Size of the random evaluation sets (Mandelbrot, surfaces).
pub const EVAL_POINTS: usize = 4096;

/// What a data set's outputs mean, so that plots and metrics can pick the right view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// `x -> y`, one input and one output.
    Curve,
    /// `(x, y) -> value in [0, 1]`.
    ScalarField2d,
    /// `(row, col) -> channels` values in [0, 1].
    Image { channels: usize },
    /// `(u, v) -> (x, y, z)`.
    Surface,
    /// Reserved for MNIST and labelled CSV tables.
    Classification { classes: usize },
    /// Reserved for generic regression tables.
    Table,
}

/// Inputs and targets of an evaluation set, row-major, owned or borrowed from the data set.
#[derive(Clone, Debug)]
pub struct EvalSet<'a> {
    pub inputs: Cow<'a, [f32]>,
    pub targets: Cow<'a, [f32]>,
}

impl EvalSet<'_> {
    /// Number of points, given the input width.
    pub fn len(&self, input_dims: usize) -> usize {
        self.inputs.len() / input_dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Error measures of a prediction against targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Mean over all points and output components of the squared error.
    pub mse: f64,
    /// `10 log10(1 / mse)` for data with values in [0, 1] (images, scalar fields); infinite
    /// when the prediction is exact.
    pub psnr: Option<f64>,
    /// Surfaces: mean over points of the squared Euclidean distance between predicted and true
    /// points (`mse * 3`).
    pub mean_sq_dist: Option<f64>,
}

/// A target function over a box-shaped domain together with a way of sampling it.
// `len` is an Option (on-the-fly data has no size), so an `is_empty` would say nothing useful.
#[allow(clippy::len_without_is_empty)]
pub trait Dataset: Send + Sync {
    /// Short human-readable name, e.g. `curve sin(3x)` or `image camera.png (gray)`.
    fn name(&self) -> String;
    fn input_dims(&self) -> usize;
    fn output_dims(&self) -> usize;
    /// The input box, one `(lo, hi)` per input dimension.
    fn domain(&self) -> &[(f64, f64)];
    fn kind(&self) -> Kind;
    /// Size of the fixed training set, or `None` when points are drawn fresh for every batch.
    fn len(&self) -> Option<usize>;
    /// Fills a batch of `inputs.len() / input_dims()` points. Fixed sets are sampled uniformly
    /// with replacement; on-the-fly data draws fresh points. Does not allocate.
    fn fill_batch(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f32], targets: &mut [f32]);
    /// The fixed training set, row-major `(inputs, targets)`, if there is one.
    fn training_points(&self) -> Option<(&[f32], &[f32])>;
    /// Points on which to measure the error.
    fn eval_set(&self) -> EvalSet<'_>;
    /// Evaluates the true function at arbitrary points (row-major). Returns false, leaving `out`
    /// unspecified, when the data set has no function to evaluate (e.g. CSV points).
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool;
    /// Error measures appropriate for the data set.
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        Metrics { mse: mse(pred, target), psnr: None, mean_sq_dist: None }
    }
    /// `(height, width)` for image data sets, whose inputs are `(row, col)`.
    fn image_shape(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Mean squared error over all components; 0 for empty input. Extra elements of the longer slice
/// are ignored.
pub fn mse(pred: &[f32], target: &[f32]) -> f64 {
    let n = pred.len().min(target.len());
    if n == 0 {
        return 0.0;
    }
    let sum: f64 = pred.iter().zip(target).map(|(&p, &t)| (p as f64 - t as f64).powi(2)).sum();
    sum / n as f64
}

/// Peak signal-to-noise ratio in dB for peak value 1.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        -10.0 * mse.log10()
    }
}
