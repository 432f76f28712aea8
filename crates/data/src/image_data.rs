use std::borrow::Cow;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Pixel};
use serde::{Deserialize, Serialize};

use crate::error::{io_reason, one_line};
use crate::fixed::FixedSet;
use crate::{mse, psnr_from_mse, DataError, Dataset, EvalSet, Kind, Metrics};

/// How many channels to learn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// Gray when the file is grayscale or every pixel has equal R, G and B; RGB otherwise.
    #[default]
    Auto,
    /// Luma (Rec. 709 weights) of the image.
    Gray,
    Rgb,
}

/// `kind = "image"`: every pixel of a PNG or JPEG file is a sample `(row, col) -> values in [0, 1]`.
/// Alpha is dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub path: PathBuf,
    #[serde(default)]
    pub color: ColorMode,
    /// Longest side after loading; larger images are downscaled (Lanczos3, aspect kept), smaller
    /// ones are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
    /// The every-other-pixel protocol of Tancik et al. (Fourier features, 2020): train on pixels
    /// with `row % 2 == 0 && col % 2 == 0`, evaluate on all the others.
    #[serde(default)]
    pub holdout: bool,
}

impl ImageSpec {
    pub fn new(path: impl Into<PathBuf>) -> ImageSpec {
        ImageSpec { path: path.into(), color: ColorMode::Auto, max_size: None, holdout: false }
    }
}

pub struct ImageDataset {
    name: String,
    width: usize,
    height: usize,
    channels: usize,
    /// Row-major `height * width * channels` values in [0, 1].
    pixels: Vec<f32>,
    domain: [(f64, f64); 2],
    train: FixedSet,
    /// Held-out pixels when `holdout` is on; otherwise the eval set is the training set.
    held_out: Option<FixedSet>,
}

impl std::fmt::Debug for ImageDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageDataset")
            .field("name", &self.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("channels", &self.channels)
            .finish()
    }
}

impl ImageDataset {
    pub fn load(spec: &ImageSpec) -> Result<ImageDataset, DataError> {
        let path = &spec.path;
        let shown = path.display().to_string();
        if let Some(m) = spec.max_size {
            if m < 2 {
                return Err(DataError::invalid(
                    format!("image '{shown}' max_size"),
                    format!("must be at least 2, got {m}"),
                ));
            }
        }
        let img = read_image(path)?;
        let (w0, h0) = (img.width() as usize, img.height() as usize);
        if w0 < 2 || h0 < 2 {
            return Err(DataError::invalid(
                format!("image '{shown}'"),
                format!("image is {w0}x{h0} pixels; expected at least 2x2"),
            ));
        }
        let gray = match spec.color {
            ColorMode::Gray => true,
            ColorMode::Rgb => false,
            ColorMode::Auto => !img.color().has_color() || all_channels_equal(&img),
        };
        let (mut pixels, width, height, channels) = if gray {
            let buf = downscale(img.to_luma32f(), spec.max_size);
            let (w, h) = buf.dimensions();
            (buf.into_raw(), w as usize, h as usize, 1)
        } else {
            let buf = downscale(img.to_rgb32f(), spec.max_size);
            let (w, h) = buf.dimensions();
            (buf.into_raw(), w as usize, h as usize, 3)
        };
        // Lanczos overshoots near edges; targets are promised to lie in [0, 1].
        for v in &mut pixels {
            *v = v.clamp(0.0, 1.0);
        }

        let mut train = FixedSet { inputs: Vec::new(), targets: Vec::new(), in_dims: 2, out_dims: channels };
        let mut held = FixedSet { inputs: Vec::new(), targets: Vec::new(), in_dims: 2, out_dims: channels };
        for r in 0..height {
            for c in 0..width {
                let set = if !spec.holdout || (r % 2 == 0 && c % 2 == 0) { &mut train } else { &mut held };
                set.inputs.extend_from_slice(&[r as f32, c as f32]);
                let k = (r * width + c) * channels;
                set.targets.extend_from_slice(&pixels[k..k + channels]);
            }
        }
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(shown);
        let mode = if gray { "gray" } else { "rgb" };
        let split = if spec.holdout { ", holdout" } else { "" };
        Ok(ImageDataset {
            name: format!("image {file} ({mode} {width}x{height}{split})"),
            width,
            height,
            channels,
            pixels,
            domain: [(0.0, (height - 1) as f64), (0.0, (width - 1) as f64)],
            train,
            held_out: spec.holdout.then_some(held),
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// All pixels, row-major `height * width * channels`, values in [0, 1].
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    fn at(&self, r: usize, c: usize, ch: usize) -> f32 {
        self.pixels[(r * self.width + c) * self.channels + ch]
    }
}

/// Largest image a data set is made of: 8192 x 8192 pixels, 805 MB as RGB floats.
pub const MAX_IMAGE_PIXELS: u64 = 8192 * 8192;

fn read_image(path: &Path) -> Result<DynamicImage, DataError> {
    let shown = path.display().to_string();
    let read_err = |e: std::io::Error| DataError::ImageRead { path: shown.clone(), reason: io_reason(&e) };
    // Opening a directory succeeds on Unix; say what is wrong instead of a later read error.
    if path.is_dir() {
        return Err(DataError::ImageRead { path: shown, reason: "is a directory".into() });
    }
    let open = || image::ImageReader::open(path).map_err(read_err)?.with_guessed_format().map_err(read_err);
    // The header first: a huge image is refused before gigabytes are decoded and converted to floats.
    if let Ok((w, h)) = open()?.into_dimensions() {
        let pixels = w as u64 * h as u64;
        if pixels > MAX_IMAGE_PIXELS {
            return Err(DataError::invalid(
                format!("image '{shown}'"),
                format!(
                    "{w} x {h} pixels ({} megapixels) is more than the limit of 8192 x 8192 ({} megapixels); \
                     downscale the file first",
                    pixels / 1_000_000,
                    MAX_IMAGE_PIXELS / 1_000_000
                ),
            ));
        }
    }
    open()?.decode().map_err(|e| DataError::ImageDecode { path: shown.clone(), reason: one_line(&e.to_string()) })
}

fn all_channels_equal(img: &DynamicImage) -> bool {
    // 16-bit files must not be rounded to 8 bits before comparing.
    match img {
        DynamicImage::ImageRgb8(b) => b.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        DynamicImage::ImageRgba8(b) => b.pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
        _ => img.to_rgb32f().pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
    }
}

fn downscale<P>(buf: ImageBuffer<P, Vec<f32>>, max_size: Option<u32>) -> ImageBuffer<P, Vec<f32>>
where
    P: Pixel<Subpixel = f32> + 'static,
{
    let (w, h) = buf.dimensions();
    let Some(m) = max_size else { return buf };
    let longest = w.max(h);
    if longest <= m {
        return buf;
    }
    let scale = m as f64 / longest as f64;
    let nw = ((w as f64 * scale).round() as u32).clamp(2, m);
    let nh = ((h as f64 * scale).round() as u32).clamp(2, m);
    image::imageops::resize(&buf, nw, nh, FilterType::Lanczos3)
}

impl Dataset for ImageDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        2
    }
    fn output_dims(&self) -> usize {
        self.channels
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        Kind::Image { channels: self.channels }
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
    fn eval_set(&self) -> EvalSet<'_> {
        let set = self.held_out.as_ref().unwrap_or(&self.train);
        EvalSet { inputs: Cow::Borrowed(&set.inputs), targets: Cow::Borrowed(&set.targets) }
    }
    /// Bilinear interpolation at `(row, col)`, clamped to the image.
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool {
        let ch = self.channels;
        let (hmax, wmax) = ((self.height - 1) as f32, (self.width - 1) as f32);
        for (p, o) in inputs.chunks_exact(2).zip(out.chunks_exact_mut(ch)) {
            let r = p[0].clamp(0.0, hmax);
            let c = p[1].clamp(0.0, wmax);
            // `as usize` saturates, so NaN lands on pixel 0 instead of panicking.
            let (r0, c0) = (r.floor() as usize, c.floor() as usize);
            let (r1, c1) = ((r0 + 1).min(self.height - 1), (c0 + 1).min(self.width - 1));
            let (fr, fc) = (r - r0 as f32, c - c0 as f32);
            for (k, v) in o.iter_mut().enumerate() {
                let top = self.at(r0, c0, k) * (1.0 - fc) + self.at(r0, c1, k) * fc;
                let bottom = self.at(r1, c0, k) * (1.0 - fc) + self.at(r1, c1, k) * fc;
                *v = top * (1.0 - fr) + bottom * fr;
            }
        }
        true
    }
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        let m = mse(pred, target);
        Metrics { mse: m, psnr: Some(psnr_from_mse(m)), mean_sq_dist: None, accuracy: None }
    }
    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((self.height, self.width))
    }
}
