//! The neurons' view: every unit of a network drawn as a small tile of its output over the window, a block of
//! tiles per layer, the way TensorFlow Playground draws its neurons. Blue is positive, orange negative, white
//! zero; each tile is scaled to its own largest magnitude, so that a unit's shape shows whatever its size.

use crate::compose::{caption_bar, hstack, vstack, PANEL_BACKGROUND};
use crate::error::ViewError;
use image::{Rgb, RgbImage};

/// The most units drawn per layer; wider layers show their first ones and say so.
pub const MAX_UNITS_SHOWN: usize = 256;

/// Blocks are wrapped onto a new row beyond this width, so that a deep network stays a picture, not a strip.
const MAX_ROW_WIDTH: u32 = 1600;

const TILE_GAP: u32 = 2;
const BLOCK_GAP: u32 = 10;
const POSITIVE: [f32; 3] = [33.0, 102.0, 172.0];
const NEGATIVE: [f32; 3] = [230.0, 126.0, 34.0];
const ZERO: [f32; 3] = [246.0, 246.0, 246.0];

/// Where a layer's values were sampled: `points` evenly spaced over a 1-D domain, or a `cols x rows` grid of a 2-D
/// one, row-major from the top-left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeuronGrid {
    Line { points: usize },
    Field { cols: usize, rows: usize },
}

impl NeuronGrid {
    pub fn points(self) -> usize {
        match self {
            NeuronGrid::Line { points } => points,
            NeuronGrid::Field { cols, rows } => cols * rows,
        }
    }

    /// The grid to sample for layers of at most `units` units: smaller tiles for wider layers, so that a block
    /// stays about 300 pixels wide. `aspect` is height / width of a 2-D window.
    pub fn for_units(dims: usize, units: usize, aspect: f64) -> NeuronGrid {
        let side = match units.min(MAX_UNITS_SHOWN) {
            0..=16 => 48,
            17..=64 => 36,
            _ => 18,
        };
        if dims == 1 {
            NeuronGrid::Line { points: 2 * side }
        } else {
            let (cols, rows) = if aspect >= 1.0 {
                (((side as f64) / aspect).round().max(4.0) as usize, side)
            } else {
                (side, ((side as f64) * aspect).round().max(4.0) as usize)
            };
            NeuronGrid::Field { cols, rows }
        }
    }

    /// The tile's size in pixels: one sample per pixel.
    fn tile(self) -> (u32, u32) {
        match self {
            NeuronGrid::Line { points } => (points as u32, (points as u32 / 2).max(8)),
            NeuronGrid::Field { cols, rows } => (cols as u32, rows as u32),
        }
    }
}

/// One layer's values: `[points, units]` row-major, the points in the grid's order.
#[derive(Clone, Copy, Debug)]
pub struct NeuronLayerValues<'a> {
    pub name: &'a str,
    pub units: usize,
    pub values: &'a [f32],
}

fn shade(v: f32, scale: f32) -> [u8; 3] {
    let t = if scale > 0.0 && v.is_finite() { (v / scale).clamp(-1.0, 1.0) } else { 0.0 };
    let end = if t >= 0.0 { POSITIVE } else { NEGATIVE };
    let a = t.abs();
    std::array::from_fn(|c| (ZERO[c] + (end[c] - ZERO[c]) * a).round() as u8)
}

/// Draws unit `u` of `layer` into `img` at `(x, y)`.
fn draw_tile(img: &mut RgbImage, layer: &NeuronLayerValues, u: usize, grid: NeuronGrid, x: u32, y: u32) {
    let n = grid.points();
    let value = |p: usize| layer.values[p * layer.units + u];
    let scale = (0..n).map(|p| value(p).abs()).filter(|v| v.is_finite()).fold(0.0f32, f32::max);
    match grid {
        NeuronGrid::Field { cols, rows } => {
            for r in 0..rows {
                for c in 0..cols {
                    img.put_pixel(x + c as u32, y + r as u32, Rgb(shade(value(r * cols + c), scale)));
                }
            }
        }
        NeuronGrid::Line { points } => {
            let (w, h) = grid.tile();
            for dy in 0..h {
                for dx in 0..w {
                    img.put_pixel(x + dx, y + dy, Rgb(ZERO.map(|c| c as u8)));
                }
            }
            let mid = (h - 1) as f32 / 2.0;
            for dx in 0..w {
                img.put_pixel(x + dx, y + mid.round() as u32, Rgb([200, 200, 200]));
            }
            let row = |p: usize| {
                let t = if scale > 0.0 && value(p).is_finite() { value(p) / scale } else { 0.0 };
                (mid - t * (mid - 1.0)).round().clamp(0.0, (h - 1) as f32) as u32
            };
            for p in 0..points {
                // A vertical run joins each point to the next, so that steep parts stay connected.
                let (a, b) = (row(p), row((p + 1).min(points - 1)));
                // Full colour by sign: a faint line near zero would vanish into the white.
                let colour = shade(if value(p) >= 0.0 { 1.0 } else { -1.0 }, 1.0);
                for dy in a.min(b)..=a.max(b) {
                    img.put_pixel(x + p as u32, y + dy, Rgb(colour));
                }
            }
        }
    }
}

/// One layer as a captioned block of tiles, about square.
fn layer_block(layer: &NeuronLayerValues, grid: NeuronGrid) -> Result<RgbImage, ViewError> {
    let shown = layer.units.min(MAX_UNITS_SHOWN);
    let (tw, th) = grid.tile();
    let cols = ((shown as f64 * th as f64 / tw as f64).sqrt().ceil() as usize).clamp(1, shown.max(1));
    let rows = shown.div_ceil(cols).max(1);
    let width = cols as u32 * (tw + TILE_GAP) - TILE_GAP;
    let height = rows as u32 * (th + TILE_GAP) - TILE_GAP;
    let mut tiles = RgbImage::from_pixel(width, height, Rgb(PANEL_BACKGROUND));
    for u in 0..shown {
        let (c, r) = ((u % cols) as u32, (u / cols) as u32);
        draw_tile(&mut tiles, layer, u, grid, c * (tw + TILE_GAP), r * (th + TILE_GAP));
    }
    let caption = if shown < layer.units {
        format!("{} ({shown} of {})", layer.name, layer.units)
    } else {
        format!("{} ({})", layer.name, layer.units)
    };
    // Wide enough for the caption: about 10 pixels a character at the caption's 18-pixel font.
    let bar = caption_bar(&caption, width.max(10 * caption.chars().count() as u32 + 16))?;
    Ok(vstack(&[&bar, &tiles], 0))
}

/// Every layer as a block of tiles, side by side, wrapped onto rows beyond 1600 pixels.
pub fn render_neurons(layers: &[NeuronLayerValues], grid: NeuronGrid) -> Result<RgbImage, ViewError> {
    if layers.is_empty() {
        return Err(ViewError::new("neurons: no layer to draw (a linear model on the raw coordinates)"));
    }
    for l in layers {
        if l.values.len() != grid.points() * l.units {
            return Err(ViewError::new(format!(
                "neurons: {}: {} values for {} points x {} units",
                l.name,
                l.values.len(),
                grid.points(),
                l.units
            )));
        }
    }
    let blocks: Vec<RgbImage> = layers.iter().map(|l| layer_block(l, grid)).collect::<Result<_, _>>()?;
    let mut rows: Vec<RgbImage> = Vec::new();
    let mut row: Vec<&RgbImage> = Vec::new();
    let mut width = 0;
    for block in &blocks {
        if !row.is_empty() && width + BLOCK_GAP + block.width() > MAX_ROW_WIDTH {
            rows.push(hstack(&row, BLOCK_GAP));
            row.clear();
            width = 0;
        }
        width += block.width() + if row.is_empty() { 0 } else { BLOCK_GAP };
        row.push(block);
    }
    rows.push(hstack(&row, BLOCK_GAP));
    Ok(vstack(&rows.iter().collect::<Vec<_>>(), BLOCK_GAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_follow_sign_and_scale() {
        assert_eq!(shade(0.0, 1.0), [246, 246, 246]);
        assert_eq!(shade(2.0, 2.0), [33, 102, 172]);
        assert_eq!(shade(-5.0, 2.0), [230, 126, 34]);
        assert_eq!(shade(1.0, 0.0), [246, 246, 246], "a unit that is zero everywhere is white");
        assert_eq!(shade(f32::NAN, 1.0), [246, 246, 246]);
    }

    #[test]
    fn a_field_tile_is_the_unit_over_the_grid() {
        // Unit 0 is x (negative left, positive right), unit 1 is constant 0.
        let grid = NeuronGrid::Field { cols: 4, rows: 3 };
        let values: Vec<f32> = (0..12).flat_map(|p| [(p % 4) as f32 - 1.5, 0.0]).collect();
        let layer = NeuronLayerValues { name: "layer 1", units: 2, values: &values };
        let img = render_neurons(&[layer], grid).unwrap();
        let top = img.height() - 3;
        assert_eq!(img.get_pixel(0, top).0, [230, 126, 34], "left: most negative");
        assert_eq!(img.get_pixel(3, top).0, [33, 102, 172], "right: most positive");
        assert_eq!(img.get_pixel(4 + TILE_GAP, top).0, [246, 246, 246], "the second unit is zero: white");
    }

    #[test]
    fn wide_layers_show_their_first_units_and_blocks_wrap() {
        let grid = NeuronGrid::for_units(2, 512, 1.0);
        assert_eq!(grid, NeuronGrid::Field { cols: 18, rows: 18 });
        let values = vec![0.5; grid.points() * 512];
        let layers: Vec<NeuronLayerValues> =
            (0..6).map(|_| NeuronLayerValues { name: "layer", units: 512, values: &values }).collect();
        let img = render_neurons(&layers, grid).unwrap();
        // 256 tiles of 18 px: 16 columns, 16 rows per block; six blocks do not fit in 1600 px.
        let block = 16 * 20 - 2;
        assert!(img.width() <= MAX_ROW_WIDTH && img.width() >= 4 * block, "{}", img.width());
        assert!(img.height() > 2 * block, "wrapped onto a second row: {}", img.height());
        let bad = NeuronLayerValues { name: "layer", units: 3, values: &values[..5] };
        let e = render_neurons(&[bad], grid).unwrap_err().to_string();
        assert!(e.contains("5 values for 324 points x 3 units"), "{e}");
        assert!(render_neurons(&[], grid).is_err());
    }

    #[test]
    fn a_line_tile_draws_the_curve() {
        let grid = NeuronGrid::Line { points: 16 };
        let values: Vec<f32> = (0..16).map(|p| if p < 8 { 1.0 } else { -1.0 }).collect();
        let img = render_neurons(&[NeuronLayerValues { name: "l", units: 1, values: &values }], grid).unwrap();
        let (_, th) = grid.tile();
        let top = img.height() - th;
        assert_eq!(img.get_pixel(0, top + 1).0, [33, 102, 172], "positive half near the top");
        assert_eq!(img.get_pixel(15, top + th - 2).0, [230, 126, 34], "negative half near the bottom");
    }
}
