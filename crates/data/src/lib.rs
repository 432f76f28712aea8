//! Data sets of approxlab: a target function, a domain and a sampler.
//!
//! Every data set implements [`Dataset`]. Data sets are described by a [`DataSpec`] (from TOML or
//! from a short CLI form, see [`DataSpec::parse`]) and built with [`DataSpec::build`]. This crate
//! knows nothing about the training engine: it hands out plain `f32` rows.
//!
//! # CLI forms
//!
//! `mandelbrot`, `mandelbrot:smooth`, `mandelbrot:periodic`, `image:PATH`, `curve`,
//! `curve:NAME_OR_EXPR`, `curve:csv:PATH`, `surface:sphere`, `surface:shell`, `surface:torus`,
//! `mnist:DIR`, `csv:PATH`.
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
//! kind = "mnist"        # dir = "data/mnist"   normalize = "unit"|"standard"   validation = 5000
//!                       # limit = 1000 (training images)   test_limit = 1000
//! kind = "csv"          # path = "t.csv"   inputs = ["a", 2, "4-6"]   targets = ["y"]
//!                       # task = "regression"|"classification"   header = "auto"|true|false
//!                       # standardize = true   standardize_targets = false   validation = 0.2
//!                       # delimiter = ","
//! ```
//!
//! Classification data (`mnist`, `csv` with `task = "classification"`) has one-hot target rows
//! `[n, classes]` of 0/1; [`Metrics::accuracy`] and [`confusion_matrix`] compare the argmax of
//! prediction and target rows.
//!
//! User expressions: see the grammar in `expr.rs` (`-x^2` is `-(x^2)`, `3x` is `3*x`, functions
//! such as `sin exp ln sqrt abs min max`, constants `pi e tau`).

mod curve;
mod error;
mod expr;
mod fixed;
mod image_data;
mod mandelbrot;
mod mnist;
mod spec;
mod surface;
mod table;

use std::borrow::Cow;

pub use curve::{CurveDataset, CurveSpec, NamedCurve, CURVE_DOMAIN, NAMED_CURVES};
pub use error::DataError;
pub use image_data::{ColorMode, ImageDataset, ImageSpec};
pub use mandelbrot::{
    mandelbrot_periodic, mandelbrot_smooth, periodic_by_iterating, periodic_rows, periodic_rows_f64, surely_inside,
    MandelbrotDataset, MandelbrotSpec, MandelbrotTarget, MANDELBROT_WINDOW,
};
pub use mnist::{
    read_idx, Idx, IdxError, MnistDataset, MnistNormalize, MnistSpec, MNIST_FILES, MNIST_MEAN, MNIST_STD,
    MNIST_VALIDATION,
};
pub use spec::{spec_usages, DataSpec, FORMS as DATA_FORMS};
pub use surface::{SurfaceDataset, SurfaceShape, SurfaceSpec};
pub use table::{Column, Columns, HeaderMode, TableDataset, TableSpec, TableTask, MAX_CLASSES, TABLE_VALIDATION};

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
    /// MNIST and labelled CSV tables: any inputs, one-hot targets `[n, classes]`.
    Classification { classes: usize },
    /// Regression tables (CSV): any number of inputs and outputs.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Mean over all points and output components of the squared error.
    pub mse: f64,
    /// `10 log10(1 / mse)` for data with values in [0, 1] (images, scalar fields); infinite
    /// when the prediction is exact.
    pub psnr: Option<f64>,
    /// Surfaces: mean over points of the squared Euclidean distance between predicted and true
    /// points (`mse * 3`).
    pub mean_sq_dist: Option<f64>,
    /// Classification: fraction of rows whose prediction argmax equals the target argmax.
    pub accuracy: Option<f64>,
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
    /// Points on which to measure the error during training (a validation split where there is
    /// one).
    fn eval_set(&self) -> EvalSet<'_>;
    /// The final held-out evaluation set, e.g. MNIST's 10,000 test images; `None` when the data
    /// set has none.
    fn test_set(&self) -> Option<EvalSet<'_>> {
        None
    }
    /// Number of classes of classification data (the width of the one-hot target rows).
    fn classes(&self) -> Option<usize> {
        match self.kind() {
            Kind::Classification { classes } => Some(classes),
            _ => None,
        }
    }
    /// Names of the classes in target column order, for classification data.
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }
    /// Evaluates the true function at arbitrary points (row-major). Returns false, leaving `out`
    /// unspecified, when the data set has no function to evaluate (e.g. CSV points).
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool;
    /// Whether [`Dataset::truth`] can evaluate anything: asked once at the origin of the input space.
    fn has_truth(&self) -> bool {
        self.truth(&vec![0.0; self.input_dims()], &mut vec![0.0; self.output_dims()])
    }
    /// Error measures appropriate for the data set: the mean squared error, plus the accuracy
    /// for classification data.
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        match self.classes() {
            Some(classes) => classification_metrics(pred, target, classes),
            None => Metrics { mse: mse(pred, target), ..Metrics::default() },
        }
    }
    /// `(height, width)` for image data sets, whose inputs are `(row, col)`.
    fn image_shape(&self) -> Option<(usize, usize)> {
        None
    }
    /// [`Dataset::fill_batch`] with f64 coordinates. A data set whose target is defined at every real point (the
    /// Mandelbrot set) draws and evaluates its points in f64, for zooms deeper than f32 resolves; the others give
    /// their f32 points widened.
    fn fill_batch_f64(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f64], targets: &mut [f32]) {
        with_f32_buffer(inputs.len(), |x| {
            self.fill_batch(rng, x, targets);
            inputs.iter_mut().zip(x.iter()).for_each(|(w, v)| *w = *v as f64);
        })
    }
    /// [`Dataset::truth`] at f64 points.
    fn truth_f64(&self, inputs: &[f64], out: &mut [f32]) -> bool {
        with_f32_buffer(inputs.len(), |x| {
            x.iter_mut().zip(inputs).for_each(|(n, v)| *n = *v as f32);
            self.truth(x, out)
        })
    }
}

thread_local! {
    static F32_BUFFER: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Calls `f` with a zeroed f32 buffer of `len` values, kept per thread between calls (taken out while in use, so
/// a nested call gets its own): the f64 defaults above allocate only the first time.
pub(crate) fn with_f32_buffer<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = F32_BUFFER.take();
    buffer.clear();
    buffer.resize(len, 0.0);
    let result = f(&mut buffer);
    F32_BUFFER.set(buffer);
    result
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

/// Index of the largest element of a row (the first one on ties; NaN never wins); 0 for an empty
/// or all-NaN row.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in row.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

/// Counts of `(true class, predicted class)` over the rows of `classes` columns: `m[t][p]` is the
/// number of rows whose target argmax is `t` and whose prediction argmax is `p`. Extra elements of
/// the longer slice and a trailing partial row are ignored.
pub fn confusion_matrix(pred: &[f32], target: &[f32], classes: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; classes]; classes];
    if classes == 0 {
        return m;
    }
    for (p, t) in pred.chunks_exact(classes).zip(target.chunks_exact(classes)) {
        m[argmax(t)][argmax(p)] += 1;
    }
    m
}

/// Fraction of rows whose prediction argmax equals the target argmax; 0 when there are no rows.
pub fn accuracy(pred: &[f32], target: &[f32], classes: usize) -> f64 {
    if classes == 0 {
        return 0.0;
    }
    let (mut right, mut total) = (0usize, 0usize);
    for (p, t) in pred.chunks_exact(classes).zip(target.chunks_exact(classes)) {
        right += usize::from(argmax(p) == argmax(t));
        total += 1;
    }
    if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    }
}

/// Mean squared error and accuracy of one-hot classification rows.
pub fn classification_metrics(pred: &[f32], target: &[f32], classes: usize) -> Metrics {
    Metrics { mse: mse(pred, target), accuracy: Some(accuracy(pred, target, classes)), ..Metrics::default() }
}

/// One-hot rows `[labels.len(), classes]` of 0/1.
pub(crate) fn one_hot(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; labels.len() * classes];
    for (row, &l) in out.chunks_exact_mut(classes).zip(labels) {
        row[l] = 1.0;
    }
    out
}
