//! MNIST from the four original IDX files (plain or gzipped).

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::io_reason;
use crate::fixed::FixedSet;
use crate::{one_hot, DataError, Dataset, EvalSet, Kind};

/// `(training images, training labels, test images, test labels)`: the file names of the original
/// distribution. Each is looked up as is and with `.gz` appended.
pub const MNIST_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// Mean of the MNIST training pixels scaled to [0, 1] (all 60,000 images), used by
/// `normalize = "standard"`.
pub const MNIST_MEAN: f64 = 0.1307;
/// Standard deviation of the MNIST training pixels scaled to [0, 1], used by
/// `normalize = "standard"`.
pub const MNIST_STD: f64 = 0.3081;
/// Default number of training images held out for validation (the last ones of the file).
pub const MNIST_VALIDATION: usize = 5000;

const CLASSES: usize = 10;
const IMAGE_MAGIC: u32 = 0x0000_0803;
const LABEL_MAGIC: u32 = 0x0000_0801;

/// How pixels become inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MnistNormalize {
    /// `pixel / 255`, in [0, 1].
    #[default]
    Unit,
    /// `(pixel / 255 - MNIST_MEAN) / MNIST_STD`: the fixed constants of the full 60,000-image
    /// training set (as in the PyTorch examples), not recomputed from the loaded data, so that
    /// `limit` and `validation` do not change the inputs. Values lie in about [-0.42, 2.82].
    Standard,
}

/// `kind = "mnist"`: 28x28 gray digits, 784 inputs in a box, 10 classes as one-hot targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MnistSpec {
    /// Directory holding the four IDX files [`MNIST_FILES`], each plain or `.gz`.
    pub dir: PathBuf,
    #[serde(default)]
    pub normalize: MnistNormalize,
    /// Training images held out for validation, taken from the end of the training file (no
    /// shuffling, so the split is deterministic); default 5000, 0 allowed (the eval set is then
    /// the test set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    /// At most this many training images (the first ones of the file, before the validation
    /// images); for quick runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// At most this many test images (the first ones of the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

impl MnistSpec {
    pub fn new(dir: impl Into<PathBuf>) -> MnistSpec {
        MnistSpec { dir: dir.into(), normalize: MnistNormalize::Unit, validation: None, limit: None, test_limit: None }
    }
}

/// A parsed IDX file of unsigned bytes: `dims` (e.g. `[n, rows, cols]` for images, `[n]` for
/// labels) and the row-major data, `dims.iter().product()` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Why bytes are not a valid IDX file; the caller adds the file name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdxError {
    #[error("file is {len} bytes, too short for its IDX header; expected at least {needed} bytes")]
    TooShort { len: usize, needed: usize },
    #[error("wrong magic number 0x{found:08x}; expected {expected}")]
    Magic { found: u32, expected: String },
    #[error("dimensions {dims} hold too many values; expected an IDX file that fits in memory")]
    Overflow { dims: String },
    #[error("truncated data: dimensions {dims} need {expected} data bytes, found {actual}")]
    Truncated { dims: String, expected: usize, actual: usize },
    #[error("{extra} bytes after the data of dimensions {dims} ({expected} bytes); expected the file to end there")]
    Trailing { dims: String, expected: usize, extra: usize },
}

fn magic_of(bytes: &[u8]) -> Option<u32> {
    bytes.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an IDX file of unsigned bytes (magic `0x000008NN`, NN the number of dimensions, then NN
/// big-endian `u32` sizes, then the data). The data must fill the file exactly.
pub fn read_idx(bytes: &[u8]) -> Result<Idx, IdxError> {
    let Some(magic) = magic_of(bytes) else {
        return Err(IdxError::TooShort { len: bytes.len(), needed: 4 });
    };
    let ndims = (magic & 0xff) as usize;
    if magic & 0xffff_ff00 != 0x0000_0800 || ndims == 0 {
        return Err(IdxError::Magic {
            found: magic,
            expected: "0x000008NN (unsigned bytes in NN >= 1 dimensions, e.g. 0x00000801 labels, 0x00000803 images)"
                .into(),
        });
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(IdxError::TooShort { len: bytes.len(), needed: header });
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let shown = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let expected =
        dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(IdxError::Overflow { dims: shown.clone() })?;
    let actual = bytes.len() - header;
    if actual < expected {
        return Err(IdxError::Truncated { dims: shown, expected, actual });
    }
    if actual > expected {
        return Err(IdxError::Trailing { dims: shown, expected, extra: actual - expected });
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Reads `path`, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw =
        std::fs::read(path).map_err(|e| DataError::mnist(path, format!("cannot read file: {}", io_reason(&e))))?;
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        return Ok(raw);
    }
    // The gzip trailer holds the uncompressed size mod 2^32: a good capacity hint (capped in
    // case the file is not what it claims).
    let hint = raw.len().checked_sub(4).map(|k| u32::from_le_bytes([raw[k], raw[k + 1], raw[k + 2], raw[k + 3]]));
    let cap = (hint.unwrap_or(0) as usize).min(raw.len().saturating_mul(64));
    let mut out = Vec::with_capacity(cap);
    flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| {
        DataError::mnist(path, format!("not a valid gzip file: {}; expected a gzipped IDX file", io_reason(&e)))
    })?;
    Ok(out)
}

/// Finds `name` or `name.gz` in `dir`.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let tried = [dir.join(name), dir.join(format!("{name}.gz"))];
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let why = if dir.is_dir() { "file not found" } else { "directory not found" };
    Err(DataError::mnist(
        dir,
        format!(
            "{why}: tried {} and {}; expected the MNIST IDX files {} (each plain or .gz)",
            tried[0].display(),
            tried[1].display(),
            MNIST_FILES.join(", ")
        ),
    ))
}

/// Reads and parses one IDX file, checking its magic number first.
fn load_idx(path: &Path, magic: u32, what: &str) -> Result<Idx, DataError> {
    let bytes = read_maybe_gz(path)?;
    if let Some(found) = magic_of(&bytes) {
        if found != magic {
            return Err(DataError::mnist(
                path,
                format!("wrong magic number 0x{found:08x}; expected 0x{magic:08x} ({what})"),
            ));
        }
    }
    read_idx(&bytes).map_err(|e| DataError::mnist(path, e.to_string()))
}

struct Split {
    inputs: Vec<f32>,
    targets: Vec<f32>,
    labels: Vec<u8>,
}

/// Images `range` of `images` (each `pixels` bytes) as f32 rows through `lut`, in parallel.
fn convert(images: &[u8], labels: &[u8], range: std::ops::Range<usize>, pixels: usize, lut: &[f32; 256]) -> Split {
    let src = &images[range.start * pixels..range.end * pixels];
    let mut inputs = vec![0.0f32; src.len()];
    const CHUNK: usize = 1 << 16;
    inputs.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(o, s)| {
        for (o, &s) in o.iter_mut().zip(s) {
            *o = lut[s as usize];
        }
    });
    let labels = labels[range].to_vec();
    let idx: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    Split { inputs, targets: one_hot(&idx, CLASSES), labels }
}

pub struct MnistDataset {
    name: String,
    rows: usize,
    cols: usize,
    domain: Vec<(f64, f64)>,
    train: FixedSet,
    train_labels: Vec<u8>,
    validation: Split,
    test: Split,
}

impl std::fmt::Debug for MnistDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MnistDataset")
            .field("name", &self.name)
            .field("train", &self.train_labels.len())
            .field("validation", &self.validation.labels.len())
            .field("test", &self.test.labels.len())
            .finish()
    }
}

/// The four files of [`MNIST_FILES`] in that order, parsed.
struct IdxFiles {
    paths: Vec<PathBuf>,
    train_images: Idx,
    train_labels: Idx,
    test_images: Idx,
    test_labels: Idx,
}

fn check_limits(spec: &MnistSpec) -> Result<(), DataError> {
    let at_least_one = |field: &str, v: Option<usize>| match v {
        Some(0) => Err(DataError::invalid(format!("mnist {field}"), "must be at least 1, got 0")),
        _ => Ok(()),
    };
    at_least_one("limit", spec.limit)?;
    at_least_one("test_limit", spec.test_limit)
}

fn load_files(dir: &Path) -> Result<IdxFiles, DataError> {
    let paths: Vec<PathBuf> = MNIST_FILES.iter().map(|n| find_file(dir, n)).collect::<Result<_, _>>()?;
    let load = |k: usize| {
        // MNIST_FILES alternates images and labels.
        let (magic, what) = [(IMAGE_MAGIC, "an IDX image file"), (LABEL_MAGIC, "an IDX label file")][k & 1];
        load_idx(&paths[k], magic, what)
    };
    // The training images dominate; the other three load meanwhile.
    let (train_images, (train_labels, (test_images, test_labels))) =
        rayon::join(|| load(0), || rayon::join(|| load(1), || rayon::join(|| load(2), || load(3))));
    let (train_images, train_labels, test_images, test_labels) =
        (train_images?, train_labels?, test_images?, test_labels?);
    Ok(IdxFiles { paths, train_images, train_labels, test_images, test_labels })
}

/// Checks that `images` (file `ki`) and `labels` (file `kl`) pair up, one valid label per image.
fn check_pair(
    dir: &Path,
    paths: &[PathBuf],
    images: &Idx,
    labels: &Idx,
    ki: usize,
    kl: usize,
) -> Result<(), DataError> {
    let (n, m) = (images.dims[0], labels.dims[0]);
    if n != m {
        return Err(DataError::mnist(
            dir,
            format!(
                "{} has {n} images but {} has {m} labels; expected one label per image",
                file_name(&paths[ki]),
                file_name(&paths[kl])
            ),
        ));
    }
    if let Some(i) = labels.data.iter().position(|&l| l as usize >= CLASSES) {
        return Err(DataError::mnist(
            &paths[kl],
            format!("label {} at index {i}; expected labels 0 to 9", labels.data[i]),
        ));
    }
    Ok(())
}

/// The `(rows, cols)` shared by the training and test images.
fn image_size(dir: &Path, files: &IdxFiles) -> Result<(usize, usize), DataError> {
    let paths = &files.paths;
    let (rows, cols) = (files.train_images.dims[1], files.train_images.dims[2]);
    let (trows, tcols) = (files.test_images.dims[1], files.test_images.dims[2]);
    if (rows, cols) != (trows, tcols) {
        return Err(DataError::mnist(
            dir,
            format!(
                "{} holds {trows}x{tcols} images but {} holds {rows}x{cols}; expected the same image size",
                file_name(&paths[2]),
                file_name(&paths[0])
            ),
        ));
    }
    if rows * cols == 0 {
        return Err(DataError::mnist(&paths[0], format!("images are {rows}x{cols}; expected at least 1x1")));
    }
    Ok((rows, cols))
}

/// `(n_train, validation, n_test)`: how many images each split takes.
fn split_sizes(spec: &MnistSpec, n: usize, test_images: usize) -> Result<(usize, usize, usize), DataError> {
    let validation = spec.validation.unwrap_or(MNIST_VALIDATION);
    if validation >= n {
        return Err(DataError::invalid(
            format!("mnist '{}' validation", spec.dir.display()),
            format!("{validation} held-out images leave none of the {n} training images; expected fewer than {n}"),
        ));
    }
    let n_train = spec.limit.map_or(n - validation, |l| l.min(n - validation));
    let n_test = spec.test_limit.map_or(test_images, |l| l.min(test_images));
    Ok((n_train, validation, n_test))
}

/// The input value of each pixel byte, and the range of those values.
fn pixel_lut(normalize: MnistNormalize) -> ([f32; 256], (f64, f64)) {
    match normalize {
        MnistNormalize::Unit => (std::array::from_fn(|p| p as f32 / 255.0), (0.0, 1.0)),
        MnistNormalize::Standard => {
            let f = |v: f64| (v - MNIST_MEAN) / MNIST_STD;
            (std::array::from_fn(|p| f(p as f64 / 255.0) as f32), (f(0.0), f(1.0)))
        }
    }
}

impl MnistDataset {
    pub fn load(spec: &MnistSpec) -> Result<MnistDataset, DataError> {
        let dir = &spec.dir;
        check_limits(spec)?;
        let files = load_files(dir)?;
        check_pair(dir, &files.paths, &files.train_images, &files.train_labels, 0, 1)?;
        check_pair(dir, &files.paths, &files.test_images, &files.test_labels, 2, 3)?;
        let (rows, cols) = image_size(dir, &files)?;
        let pixels = rows * cols;
        let n = files.train_images.dims[0];
        let (n_train, validation, n_test) = split_sizes(spec, n, files.test_images.dims[0])?;

        let (lut, domain_1d) = pixel_lut(spec.normalize);
        let (train_images, train_labels) = (&files.train_images.data, &files.train_labels.data);
        let train = convert(train_images, train_labels, 0..n_train, pixels, &lut);
        let val = convert(train_images, train_labels, n - validation..n, pixels, &lut);
        let test = convert(&files.test_images.data, &files.test_labels.data, 0..n_test, pixels, &lut);
        let norm = match spec.normalize {
            MnistNormalize::Unit => "unit",
            MnistNormalize::Standard => "standard",
        };
        Ok(MnistDataset {
            name: format!("mnist ({norm}, {n_train} train / {validation} validation / {n_test} test)"),
            rows,
            cols,
            domain: vec![domain_1d; pixels],
            train: FixedSet { inputs: train.inputs, targets: train.targets, in_dims: pixels, out_dims: CLASSES },
            train_labels: train.labels,
            validation: val,
            test,
        })
    }

    /// `(rows, cols)` of an image; inputs are its pixels row-major.
    pub fn image_dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Labels 0-9 of the training split, the validation split and the test set.
    pub fn train_labels(&self) -> &[u8] {
        &self.train_labels
    }

    pub fn validation_labels(&self) -> &[u8] {
        &self.validation.labels
    }

    pub fn test_labels(&self) -> &[u8] {
        &self.test.labels
    }

    /// The validation split `(inputs, one-hot targets)`; empty when `validation = 0`.
    pub fn validation_points(&self) -> (&[f32], &[f32]) {
        (&self.validation.inputs, &self.validation.targets)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

impl Dataset for MnistDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        self.rows * self.cols
    }
    fn output_dims(&self) -> usize {
        CLASSES
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        Kind::Classification { classes: CLASSES }
    }
    fn len(&self) -> Option<usize> {
        Some(self.train.len())
    }
    fn fill_batch(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f32], targets: &mut [f32]) {
        self.train.fill_batch(rng, inputs, targets)
    }
    fn training_points(&self) -> Option<(&[f32], &[f32])> {
        Some((&self.train.inputs, &self.train.targets))
    }
    /// The validation split, or the test set when `validation = 0`.
    fn eval_set(&self) -> EvalSet<'_> {
        let set = if self.validation.labels.is_empty() { &self.test } else { &self.validation };
        EvalSet { inputs: Cow::Borrowed(&set.inputs), targets: Cow::Borrowed(&set.targets) }
    }
    fn test_set(&self) -> Option<EvalSet<'_>> {
        Some(EvalSet { inputs: Cow::Borrowed(&self.test.inputs), targets: Cow::Borrowed(&self.test.targets) })
    }
    fn class_names(&self) -> Option<Vec<String>> {
        Some((0..CLASSES).map(|c| c.to_string()).collect())
    }
    fn truth(&self, _inputs: &[f32], _out: &mut [f32]) -> bool {
        false
    }
}
