//! Views of a classifier while it learns: a grid of input images with their predicted
//! labels, a confusion matrix heatmap, and metric curves (accuracy per epoch).

use image::{imageops, Rgb, RgbImage};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::colormap::Colormap;
use crate::compose::PANEL_BACKGROUND;
use crate::error::ViewError;
use crate::losses::{LossSeries, PALETTE};
use crate::plot::visible_pieces;
use crate::text::{draw_text, ensure_font, FONT_FAMILY};

// ------------------------------------------------------------------ digit grid

/// Width in pixels of the coloured frame around each sample of a [`digit_grid`].
pub const DIGIT_BORDER: u32 = 2;

/// Height in pixels of the label strip under each sample of a [`digit_grid`].
pub const DIGIT_LABEL_HEIGHT: u32 = 18;

/// Gap in pixels between the tiles of a [`digit_grid`], and around them.
pub const DIGIT_GAP: u32 = 4;

/// Frame and label colour of a wrong prediction.
pub const WRONG_COLOR: [u8; 3] = [230, 30, 30];

/// Frame and label colour of a right prediction.
pub const RIGHT_COLOR: [u8; 3] = [70, 200, 100];

/// Size of the image [`digit_grid`] draws for `n` samples of `image_size` (width,
/// height) pixels in `cols` columns at `scale`: every tile is
/// `(w * scale + 2 * DIGIT_BORDER) x (h * scale + 2 * DIGIT_BORDER + DIGIT_LABEL_HEIGHT)`,
/// `DIGIT_GAP` apart and from the edges, in `cols` columns (even when `n < cols`, so
/// that frames of one run keep their size) and `ceil(n / cols)` rows.
pub fn digit_grid_size(n: usize, image_size: (u32, u32), cols: usize, scale: u32) -> (u32, u32) {
    let cols = cols.max(1);
    let rows = n.div_ceil(cols) as u32;
    let cols = cols as u32;
    let (tw, th) = digit_tile_size(image_size, scale);
    (cols * tw + (cols + 1) * DIGIT_GAP, rows * th + (rows + 1) * DIGIT_GAP)
}

fn digit_tile_size(image_size: (u32, u32), scale: u32) -> (u32, u32) {
    (image_size.0 * scale + 2 * DIGIT_BORDER, image_size.1 * scale + 2 * DIGIT_BORDER + DIGIT_LABEL_HEIGHT)
}

/// Draws `images` (each row-major `image_size.0 x image_size.1` gray values, 0 black
/// and 1 white, clamped; NaN shows as magenta) in a grid of `cols` columns, each scaled
/// up `scale` times (nearest neighbour), framed and labelled with its prediction.
///
/// A right prediction gets a green frame and its label in green; a wrong one a red
/// frame ([`WRONG_COLOR`]) and the red label `"pred (true)"`. The background is
/// [`PANEL_BACKGROUND`]; the size is [`digit_grid_size`].
pub fn digit_grid(
    images: &[&[f32]],
    image_size: (u32, u32),
    predicted: &[usize],
    truth: &[usize],
    cols: usize,
    scale: u32,
) -> Result<RgbImage, ViewError> {
    let n = images.len();
    let (iw, ih) = image_size;
    if n == 0 {
        return Err(ViewError::new("cannot draw digit grid: no images"));
    }
    if cols == 0 || scale == 0 || iw == 0 || ih == 0 {
        return Err(ViewError::new(format!(
            "cannot draw digit grid: cols ({cols}), scale ({scale}) and image size ({iw}x{ih}) must be positive"
        )));
    }
    if predicted.len() != n || truth.len() != n {
        return Err(ViewError::new(format!(
            "cannot draw digit grid: {n} images but {} predictions and {} true labels",
            predicted.len(),
            truth.len()
        )));
    }
    let want = iw as usize * ih as usize;
    if let Some(i) = images.iter().position(|im| im.len() != want) {
        return Err(ViewError::new(format!(
            "cannot draw digit grid: image {i} has {} values, expected {iw}x{ih} = {want}",
            images[i].len()
        )));
    }

    let (gw, gh) = digit_grid_size(n, image_size, cols, scale);
    let (tw, th) = digit_tile_size(image_size, scale);
    let mut out = RgbImage::from_pixel(gw, gh, Rgb(PANEL_BACKGROUND));
    for (i, img) in images.iter().enumerate() {
        let (c, r) = ((i % cols) as u32, (i / cols) as u32);
        let (x0, y0) = (DIGIT_GAP + c * (tw + DIGIT_GAP), DIGIT_GAP + r * (th + DIGIT_GAP));
        let right = predicted[i] == truth[i];
        let colour = if right { RIGHT_COLOR } else { WRONG_COLOR };

        // Frame, then the scaled image inside it.
        fill_rect(&mut out, x0, y0, tw, ih * scale + 2 * DIGIT_BORDER, colour);
        let small = RgbImage::from_fn(iw, ih, |x, y| Rgb(Colormap::Gray.map(img[(y * iw + x) as usize])));
        let big = imageops::resize(&small, iw * scale, ih * scale, imageops::FilterType::Nearest);
        imageops::replace(&mut out, &big, (x0 + DIGIT_BORDER) as i64, (y0 + DIGIT_BORDER) as i64);

        // Label strip under the frame, drawn on its own image so that text never
        // spills into the neighbours.
        let label = if right { predicted[i].to_string() } else { format!("{} ({})", predicted[i], truth[i]) };
        let mut strip = RgbImage::from_pixel(tw, DIGIT_LABEL_HEIGHT, Rgb(PANEL_BACKGROUND));
        draw_text_centered(&mut strip, &label, 14.0, colour)?;
        imageops::replace(&mut out, &strip, x0 as i64, (y0 + th - DIGIT_LABEL_HEIGHT) as i64);
    }
    Ok(out)
}

fn fill_rect(img: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, colour: [u8; 3]) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, Rgb(colour));
        }
    }
}

/// Width and cap height (the height of digits and capitals) of `text` at `size`.
fn text_extent(text: &str, size: f64) -> Result<(u32, u32), ViewError> {
    ensure_font();
    let font: FontDesc<'_> = (FONT_FAMILY, size).into_font();
    let (w, _) = font.box_size(text).map_err(|e| ViewError::new(format!("cannot measure text {text:?}: {e:?}")))?;
    Ok((w, (0.73 * size).round() as u32))
}

/// Draws `text` centred in `img`, shrinking the font from `size` until it fits the
/// width (down to 6 px, below which nothing is drawn).
fn draw_text_centered(img: &mut RgbImage, text: &str, size: f64, colour: [u8; 3]) -> Result<(), ViewError> {
    let mut size = size;
    loop {
        let (w, h) = text_extent(text, size)?;
        if w + 2 <= img.width() && h <= img.height() {
            let x = (img.width() as i32 - w as i32) / 2;
            let y = (img.height() as i32 - h as i32) / 2;
            return draw_text(img, text, x, y, size, colour);
        }
        size -= 1.0;
        if size < 6.0 {
            return Ok(());
        }
    }
}

// ------------------------------------------------------------ confusion matrix

/// The colour map of [`confusion_matrix_image`]: 0 (no samples of the row's class
/// predicted as the column's) maps to `map(0.0)`, the whole row to `map(1.0)`.
pub const CONFUSION_COLORMAP: Colormap = Colormap::Viridis;

/// Blank space in pixels right of and below the grid of a [`confusion_matrix_image`],
/// and left of and above its axis titles.
pub const CONFUSION_MARGIN: u32 = 10;

const AXIS_TITLE_SIZE: f64 = 15.0;
const AXIS_TITLE_STRIP: u32 = 26;
const TEXT_COLOR: [u8; 3] = [30, 30, 30];

/// Where [`confusion_matrix_image`] puts things, for callers that overlay marks or
/// read cells back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfusionLayout {
    /// Size of the whole image.
    pub size: (u32, u32),
    /// Top-left pixel of the cell grid; cell `(row, col)` covers
    /// `origin + (col * cell, row * cell)` to `origin + ((col + 1) * cell, (row + 1) * cell)`.
    pub grid_origin: (u32, u32),
    /// Side of one cell.
    pub cell: u32,
    /// Whether the column labels are drawn vertically because they are wider than a cell.
    pub vertical_column_labels: bool,
}

fn class_label_size(cell: u32) -> f64 {
    (cell as f64 * 0.4).clamp(10.0, 15.0)
}

/// The layout [`confusion_matrix_image`] uses for `class_names` (one per class; the
/// grid is `class_names.len()` cells square) and `cell` pixels per cell.
pub fn confusion_matrix_layout(class_names: &[String], cell: u32) -> Result<ConfusionLayout, ViewError> {
    let n = class_names.len() as u32;
    let size = class_label_size(cell);
    let mut name_w = 0;
    for name in class_names {
        name_w = name_w.max(text_extent(name, size)?.0);
    }
    let cap = text_extent("0", size)?.1;
    let vertical = name_w + 4 > cell;
    // Left: margin, "true" written upwards, the row names right-aligned.
    let left = CONFUSION_MARGIN + AXIS_TITLE_STRIP + name_w + 8;
    // Top: margin, "predicted", the column names (rotated when they do not fit).
    let col_labels = if vertical { name_w + 8 } else { cap + 10 };
    let top = CONFUSION_MARGIN + AXIS_TITLE_STRIP + col_labels;
    Ok(ConfusionLayout {
        size: (left + n * cell + CONFUSION_MARGIN, top + n * cell + CONFUSION_MARGIN),
        grid_origin: (left, top),
        cell,
        vertical_column_labels: vertical,
    })
}

/// Draws a confusion matrix (`matrix[true][predicted]` counts, square, one row per
/// entry of `class_names`; empty `class_names` numbers the classes) as a heatmap of
/// the row-normalised matrix in [`CONFUSION_COLORMAP`], `cell` pixels per cell, on
/// white. Each cell shows its count (in black or white, whichever reads better on the
/// cell's colour; left out when the cell is too small for it). A row without samples
/// shows the map's bottom colour. The axes are titled "true" (rows, left) and
/// "predicted" (columns, top), with the class names along both.
pub fn confusion_matrix_image(matrix: &[Vec<u64>], class_names: &[String], cell: u32) -> Result<RgbImage, ViewError> {
    let n = matrix.len();
    if n == 0 {
        return Err(ViewError::new("cannot draw confusion matrix: no classes"));
    }
    if let Some(r) = matrix.iter().position(|row| row.len() != n) {
        return Err(ViewError::new(format!(
            "cannot draw confusion matrix: row {r} has {} entries, expected {n} (a square matrix)",
            matrix[r].len()
        )));
    }
    if cell == 0 {
        return Err(ViewError::new("cannot draw confusion matrix: cell size must be positive"));
    }
    let numbered: Vec<String>;
    let names = if class_names.is_empty() {
        numbered = (0..n).map(|i| i.to_string()).collect();
        &numbered[..]
    } else if class_names.len() == n {
        class_names
    } else {
        return Err(ViewError::new(format!(
            "cannot draw confusion matrix: {n} classes but {} class names",
            class_names.len()
        )));
    };

    let layout = confusion_matrix_layout(names, cell)?;
    let (ox, oy) = layout.grid_origin;
    let mut out = RgbImage::from_pixel(layout.size.0, layout.size.1, Rgb([255, 255, 255]));

    // Cells with their counts.
    let count_size = (cell as f64 * 0.38).min(16.0);
    for (r, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let v = if total == 0 { 0.0 } else { (count as f64 / total as f64) as f32 };
            let colour = CONFUSION_COLORMAP.map(v);
            let mut tile = RgbImage::from_pixel(cell, cell, Rgb(colour));
            if count_size >= 6.0 {
                draw_text_centered(&mut tile, &count.to_string(), count_size, contrast_text(colour))?;
            }
            imageops::replace(&mut out, &tile, (ox + c as u32 * cell) as i64, (oy + r as u32 * cell) as i64);
        }
    }

    // Class names.
    let size = class_label_size(cell);
    let cap = text_extent("0", size)?.1;
    for (i, name) in names.iter().enumerate() {
        let (w, _) = text_extent(name, size)?;
        let mid = i as u32 * cell + cell / 2;
        // Rows: right-aligned just left of the grid, centred on the row.
        let x = ox as i32 - 6 - w as i32;
        draw_text(&mut out, name, x, (oy + mid) as i32 - cap as i32 / 2, size, TEXT_COLOR)?;
        // Columns: centred on the column just above the grid.
        if layout.vertical_column_labels {
            let label = rotated_label(name, size, w + 4, cap + 6)?;
            let x = (ox + mid) as i64 - label.width() as i64 / 2;
            imageops::replace(&mut out, &label, x, (oy - 4 - label.height()) as i64);
        } else {
            let x = (ox + mid) as i32 - w as i32 / 2;
            draw_text(&mut out, name, x, (oy - 5 - cap) as i32, size, TEXT_COLOR)?;
        }
    }

    // Axis titles, centred on the grid.
    let grid = n as u32 * cell;
    let (pw, pcap) = text_extent("predicted", AXIS_TITLE_SIZE)?;
    let x = (ox + grid / 2) as i32 - pw as i32 / 2;
    let y = CONFUSION_MARGIN + (AXIS_TITLE_STRIP - pcap) / 2;
    draw_text(&mut out, "predicted", x.max(0), y as i32, AXIS_TITLE_SIZE, TEXT_COLOR)?;
    let (tw, tcap) = text_extent("true", AXIS_TITLE_SIZE)?;
    let label = rotated_label("true", AXIS_TITLE_SIZE, tw + 4, tcap + 8)?;
    let x = CONFUSION_MARGIN + (AXIS_TITLE_STRIP.saturating_sub(label.width())) / 2;
    let y = (oy + grid / 2) as i64 - label.height() as i64 / 2;
    imageops::replace(&mut out, &label, x as i64, y.max(0));
    Ok(out)
}

/// `text` written upwards (rotated 90 degrees anticlockwise) on white, in a `w x h`
/// box before rotation.
fn rotated_label(text: &str, size: f64, w: u32, h: u32) -> Result<RgbImage, ViewError> {
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let (tw, cap) = text_extent(text, size)?;
    draw_text(&mut img, text, (w as i32 - tw as i32) / 2, (h as i32 - cap as i32) / 2, size, TEXT_COLOR)?;
    Ok(imageops::rotate270(&img))
}

/// Black on light colours, white on dark ones (by relative luminance).
fn contrast_text(bg: [u8; 3]) -> [u8; 3] {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(bg[0]) + 0.7152 * lin(bg[1]) + 0.0722 * lin(bg[2]);
    // Equal contrast ratio against black and white at L = 0.179.
    if l > 0.179 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

// --------------------------------------------------------------- metric curves

/// Draws `series` (e.g. train and validation accuracy per epoch) as lines on linear
/// axes, in the look and colours of [`crate::plot_loss_curves`] (see
/// [`crate::series_color`]), with `title` above. Series with few points also get a dot
/// per point, so that a single epoch shows. `y_range` fixes the y axis (`Some((0.0,
/// 1.0))` for accuracy; lines are cut where they leave it); `None` fits the data with a
/// 5 % margin. Non-finite values break the line.
pub fn plot_metric_curves(
    series: &[LossSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
    y_range: Option<(f64, f64)>,
    width: u32,
    height: u32,
) -> Result<RgbImage, ViewError> {
    ensure_font();
    let frame = metric_frame(series, y_range)?;
    let (w, h) = (width.max(1), height.max(1));
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    draw_metric_chart(&mut buf, (w, h), series, &MetricTitles { title, x_label, y_label }, frame)?;
    RgbImage::from_raw(w, h, buf).ok_or_else(|| ViewError::new("cannot draw metric plot: buffer"))
}

/// The texts around a [`plot_metric_curves`] chart.
struct MetricTitles<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
}

/// The axis ranges of a [`plot_metric_curves`] chart and the corner of its legend.
struct MetricFrame {
    x: (f64, f64),
    y: (f64, f64),
    legend_at: SeriesLabelPosition,
}

type MetricChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn metric_plot_error(e: impl std::fmt::Display) -> ViewError {
    ViewError::new(format!("cannot draw metric plot: {e}"))
}

fn is_finite_point(&(x, y): &(f64, f64)) -> bool {
    x.is_finite() && y.is_finite()
}

/// The axes and legend corner for `series`. The x axis always takes in 0 and never
/// collapses to a point, so that a single epoch still gets an axis.
fn metric_frame(series: &[LossSeries], y_range: Option<(f64, f64)>) -> Result<MetricFrame, ViewError> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied().filter(is_finite_point)).collect();
    if all.is_empty() {
        return Err(ViewError::new("cannot draw metric plot: no finite values"));
    }
    let (x0, mut x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let x0 = x0.min(0.0);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y = match y_range {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && hi > lo => (lo, hi),
        Some(r) => return Err(ViewError::new(format!("cannot draw metric plot: bad y range {r:?}"))),
        None => fitted_y_range(&all),
    };
    Ok(MetricFrame { x: (x0, x1), y, legend_at: metric_legend_position(series, y) })
}

/// The y values of `points` with a 5 % margin; a flat line gets a margin of half its
/// value instead (at least 1e-3), so that it sits in the middle of a readable axis.
fn fitted_y_range(points: &[(f64, f64)]) -> (f64, f64) {
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = if hi - lo <= f64::EPSILON * hi.abs().max(1.0) { 0.5 * lo.abs().max(1e-3) } else { 0.05 * (hi - lo) };
    (lo - pad, hi + pad)
}

/// The legend goes where the curves are not at their end: below them when they
/// finish high (accuracy), above them otherwise (error rates).
fn metric_legend_position(series: &[LossSeries], (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let ends: Vec<f64> =
        series.iter().filter_map(|s| s.points.iter().rev().find(|p| is_finite_point(p)).map(|p| p.1)).collect();
    let finish_high = ends.iter().sum::<f64>() / ends.len().max(1) as f64 > 0.5 * (y0 + y1);
    if finish_high {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Draws the whole chart into `buf`, an RGB buffer of `size` pixels.
fn draw_metric_chart(
    buf: &mut [u8],
    size: (u32, u32),
    series: &[LossSeries],
    titles: &MetricTitles<'_>,
    frame: MetricFrame,
) -> Result<(), ViewError> {
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE).map_err(metric_plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(titles.title, (FONT_FAMILY, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(frame.x.0..frame.x.1, frame.y.0..frame.y.1)
        .map_err(metric_plot_error)?;
    chart
        .configure_mesh()
        .x_desc(titles.x_label)
        .y_desc(titles.y_label)
        .x_label_formatter(&|v| trim_number(*v))
        .label_style((FONT_FAMILY, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(metric_plot_error)?;
    for (i, s) in series.iter().enumerate() {
        draw_metric_series(&mut chart, i, s, &frame)?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT_FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .position(frame.legend_at)
        .draw()
        .map_err(metric_plot_error)?;
    root.present().map_err(metric_plot_error)
}

/// Draws the `index`-th series as its visible pieces of line, its legend entry, and,
/// when it has few points, a dot per point inside the frame.
fn draw_metric_series(
    chart: &mut MetricChart<'_, '_>,
    index: usize,
    s: &LossSeries,
    frame: &MetricFrame,
) -> Result<(), ViewError> {
    let ((x0, x1), (y0, y1)) = (frame.x, frame.y);
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    let style = ShapeStyle::from(RGBColor(r, g, b)).stroke_width(2);
    let pts: Vec<(f32, f32)> = s.points.iter().map(|&(x, y)| (x as f32, y as f32)).collect();
    let inside = |&(x, y): &(f64, f64)| is_finite_point(&(x, y)) && (x0..=x1).contains(&x) && (y0..=y1).contains(&y);
    let mut pieces = visible_pieces(&pts, (x0, x1), (y0, y1)).into_iter();
    // The legend entry is attached to the first series drawn for `s`, whichever
    // that is; an entirely invisible series gets an empty one.
    let first = match pieces.next() {
        Some(p) => chart.draw_series(LineSeries::new(p, style)),
        None => chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>()),
    }
    .map_err(metric_plot_error)?;
    first.label(s.label.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    for p in pieces {
        chart.draw_series(LineSeries::new(p, style)).map_err(metric_plot_error)?;
    }
    if s.points.len() <= 60 {
        let dot = ShapeStyle::from(RGBColor(r, g, b)).filled();
        chart
            .draw_series(s.points.iter().copied().filter(inside).map(|p| Circle::new(p, 3, dot)))
            .map_err(metric_plot_error)?;
    }
    Ok(())
}

/// `v` with at most three decimals and no trailing zeros, so that epochs read "2", not "2.0".
fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_trailing_zeros_and_text_contrasts() {
        assert_eq!(trim_number(2.0), "2");
        assert_eq!(trim_number(0.25), "0.25");
        assert_eq!(trim_number(-0.0), "0");
        assert_eq!(trim_number(1e6), "1000000");
        assert_eq!(contrast_text(Colormap::Viridis.map(1.0)), [0, 0, 0]);
        assert_eq!(contrast_text(Colormap::Viridis.map(0.0)), [255, 255, 255]);
    }
}
