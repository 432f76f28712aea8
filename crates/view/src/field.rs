use image::RgbImage;
use rayon::prelude::*;

use crate::colormap::{Colormap, NAN_COLOR};
use crate::window::{Domain, ImageDomain};
use crate::Func;

/// A tile height that keeps an 8K frame (7680 wide) at about 4 MB of points per tile.
pub const DEFAULT_TILE_ROWS: u32 = 64;

/// How many outputs an image-valued function has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One output, shown as gray.
    Gray,
    /// Three outputs, red, green, blue.
    Rgb,
}

impl Channels {
    /// The number of outputs per point.
    pub fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::Rgb => 3,
        }
    }
}

/// Colours pixel `i` of a tile from the outputs of each evaluated function.
type Colourer<'c> = &'c (dyn Fn(&[&[f32]], usize) -> [u8; 3] + Sync);

/// Evaluates `f` tile by tile (`tile_rows` image rows at a time, tiles in parallel) and
/// colours each pixel from its `out_dims` outputs.
///
/// Only one tile of points and outputs per worker is alive at any time, so an 8K
/// render needs memory for the image plus a few tiles, never for all points at once.
fn render_tiled(
    width: u32,
    height: u32,
    tile_rows: u32,
    points: &(dyn Fn(std::ops::Range<u32>) -> Vec<f32> + Sync),
    evals: &[(Func<'_>, usize)],
    colour: Colourer<'_>,
) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    if width == 0 || height == 0 {
        return img;
    }
    let tile_rows = tile_rows.max(1);
    let row_bytes = width as usize * 3;
    let buf: &mut [u8] = &mut img;
    buf.par_chunks_mut(row_bytes * tile_rows as usize).enumerate().for_each(|(t, chunk)| {
        let r0 = t as u32 * tile_rows;
        let r1 = (r0 + tile_rows).min(height);
        let pts = points(r0..r1);
        let n = pts.len() / 2;
        let outs: Vec<Vec<f32>> = evals
            .iter()
            .map(|(f, dims)| {
                // NaN-filled so that a function that forgets to write shows magenta
                // rather than a plausible colour.
                let mut out = vec![f32::NAN; n * dims];
                f(&pts, &mut out);
                out
            })
            .collect();
        let slices: Vec<&[f32]> = outs.iter().map(|o| o.as_slice()).collect();
        for (i, px) in chunk.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&colour(&slices, i));
        }
    });
    img
}

/// Renders a scalar function `f: [n, 2] -> [n, 1]` over `domain` with `colormap`,
/// values in `[0, 1]` (clamped).
///
/// `domain` is a [`crate::Window`] (inputs `(x, y)`, y up) or an [`ImageDomain`]
/// (inputs `(row, col)`). Evaluation runs in tiles of `tile_rows` rows (see
/// [`DEFAULT_TILE_ROWS`]) in parallel; the result does not depend on `tile_rows`.
pub fn render_scalar(
    f: Func<'_>,
    domain: impl Into<Domain>,
    width: u32,
    height: u32,
    colormap: Colormap,
    tile_rows: u32,
) -> RgbImage {
    render_scalar_range(f, domain, width, height, colormap, (0.0, 1.0), tile_rows)
}

/// As [`render_scalar`], with the value range `(lo, hi)` mapped to the ends of the
/// colour map (e.g. `(-1, 1)` for a sine). A degenerate range maps everything to the
/// low end rather than dividing by zero.
pub fn render_scalar_range(
    f: Func<'_>,
    domain: impl Into<Domain>,
    width: u32,
    height: u32,
    colormap: Colormap,
    range: (f32, f32),
    tile_rows: u32,
) -> RgbImage {
    let domain = domain.into();
    let (lo, hi) = range;
    let scale = if hi != lo { 1.0 / (hi - lo) } else { 0.0 };
    render_tiled(width, height, tile_rows, &|rows| domain.points(width, height, rows), &[(f, 1)], &|outs, i| {
        colormap.map((outs[0][i] - lo) * scale)
    })
}

/// Renders an image-valued function (`[n, 2] -> [n, 1]` gray or `[n, 3]` RGB, values
/// in `[0, 1]`, clamped; NaN shows magenta) over `domain`.
pub fn render_rgb(
    f: Func<'_>,
    channels: Channels,
    domain: impl Into<Domain>,
    width: u32,
    height: u32,
    tile_rows: u32,
) -> RgbImage {
    let domain = domain.into();
    let dims = channels.count();
    render_tiled(width, height, tile_rows, &|rows| domain.points(width, height, rows), &[(f, dims)], &|outs, i| {
        let px = &outs[0][i * dims..(i + 1) * dims];
        if px.iter().any(|v| v.is_nan()) {
            return NAN_COLOR;
        }
        match channels {
            Channels::Gray => {
                let g = unit_to_u8(px[0]);
                [g, g, g]
            }
            Channels::Rgb => [unit_to_u8(px[0]), unit_to_u8(px[1]), unit_to_u8(px[2])],
        }
    })
}

/// Renders an image function `(row, col) -> pixel` at `width` x `height`, sampling the
/// domain's continuous coordinates at the new pixel centres (so the whole image is
/// scaled, e.g. to look at a model between the training pixels).
pub fn render_image(
    f: Func<'_>,
    channels: Channels,
    domain: &ImageDomain,
    width: u32,
    height: u32,
    tile_rows: u32,
) -> RgbImage {
    render_rgb(f, channels, *domain, width, height, tile_rows)
}

/// Renders an image function at its own `cols` x `rows` grid: pixel `(r, c)` is the
/// function at the data set's input for pixel `(r, c)`.
pub fn render_image_native(f: Func<'_>, channels: Channels, domain: &ImageDomain, tile_rows: u32) -> RgbImage {
    render_rgb(f, channels, *domain, domain.cols, domain.rows, tile_rows)
}

/// Error map: per pixel the mean over the `out_dims` outputs of `|learned - truth|`,
/// divided by `max_err` and coloured with `colormap` (so `max_err` and above are the top
/// colour). A fixed `max_err` keeps frames of one run comparable.
#[allow(clippy::too_many_arguments)]
pub fn render_error(
    learned: Func<'_>,
    truth: Func<'_>,
    out_dims: usize,
    domain: impl Into<Domain>,
    width: u32,
    height: u32,
    colormap: Colormap,
    max_err: f32,
    tile_rows: u32,
) -> RgbImage {
    let domain = domain.into();
    let dims = out_dims.max(1);
    let scale = if max_err > 0.0 { 1.0 / max_err } else { 0.0 };
    render_tiled(
        width,
        height,
        tile_rows,
        &|rows| domain.points(width, height, rows),
        &[(learned, dims), (truth, dims)],
        &|outs, i| {
            let (l, t) = (&outs[0][i * dims..(i + 1) * dims], &outs[1][i * dims..(i + 1) * dims]);
            let err: f32 = l.iter().zip(t).map(|(a, b)| (a - b).abs()).sum::<f32>() / dims as f32;
            colormap.map(err * scale)
        },
    )
}

fn unit_to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}
