use image::RgbImage;
use plotters::prelude::*;

use crate::error::ViewError;
use crate::text::{ensure_font, FONT_FAMILY};
use crate::Func;

/// What [`plot_curve`] draws. Build with [`CurveSpec::new`] and set fields.
#[derive(Debug, Clone)]
pub struct CurveSpec<'a> {
    /// The learned function sampled over the domain, `(x, y)` in increasing `x`.
    /// Non-finite samples break the line instead of being drawn.
    pub learned: &'a [(f32, f32)],
    /// The true function sampled over the domain, drawn under the learned one.
    pub truth: Option<&'a [(f32, f32)]>,
    /// Training points, drawn as a scatter.
    pub points: &'a [(f32, f32)],
    /// Fixed `x` range; `None` fits all finite data with a 5 % margin.
    pub x_range: Option<(f64, f64)>,
    /// Fixed `y` range; `None` fits the truth and the training points with a 5 %
    /// margin (the learned curve only when there are neither), so a wild early model
    /// is clipped instead of squashing everything else flat.
    pub y_range: Option<(f64, f64)>,
    /// One line shown above the plot, e.g. `"step 1200  loss 1.2e-3  lr 1e-3"`.
    pub caption: String,
    pub width: u32,
    pub height: u32,
}

impl<'a> CurveSpec<'a> {
    /// A spec for `learned` with no truth, no points, automatic ranges, 800x600.
    pub fn new(learned: &'a [(f32, f32)]) -> Self {
        CurveSpec {
            learned,
            truth: None,
            points: &[],
            x_range: None,
            y_range: None,
            caption: String::new(),
            width: 800,
            height: 600,
        }
    }
}

/// Samples a 1-D function `f: [n, 1] -> [n, 1]` at `n` evenly spaced points of
/// `[x0, x1]` (both ends included), in one call.
pub fn sample_curve(f: Func<'_>, x0: f64, x1: f64, n: usize) -> Vec<(f32, f32)> {
    let xs: Vec<f32> = (0..n)
        .map(|i| {
            let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
            (x0 + t * (x1 - x0)) as f32
        })
        .collect();
    let mut ys = vec![f32::NAN; n];
    f(&xs, &mut ys);
    xs.into_iter().zip(ys).collect()
}

fn finite_range<'a>(mut vals: impl Iterator<Item = &'a f32>) -> Option<(f64, f64)> {
    vals.try_fold(None, |acc: Option<(f64, f64)>, &v| {
        if !v.is_finite() {
            return Some(acc);
        }
        let v = v as f64;
        Some(Some(match acc {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        }))
    })
    .flatten()
}

fn with_margin(r: Option<(f64, f64)>) -> (f64, f64) {
    match r {
        None => (-1.0, 1.0),
        Some((lo, hi)) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => {
            let pad = 0.5 * lo.abs().max(1.0);
            (lo - pad, hi + pad)
        }
        Some((lo, hi)) => {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        }
    }
}

/// Draws a curve plot (learned line, optional truth line, training scatter, caption,
/// legend) with plotters on a bitmap, using the embedded font.
pub fn plot_curve(spec: &CurveSpec<'_>) -> Result<RgbImage, ViewError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| ViewError::new(format!("cannot draw curve plot: {e}"));
    let (w, h) = (spec.width.max(1), spec.height.max(1));
    let truth = spec.truth.unwrap_or(&[]);

    let x_range = spec.x_range.unwrap_or_else(|| {
        with_margin(finite_range(spec.learned.iter().chain(truth).chain(spec.points).map(|p| &p.0)))
    });
    let y_range = spec.y_range.unwrap_or_else(|| {
        let anchored = finite_range(truth.iter().chain(spec.points).map(|p| &p.1));
        with_margin(anchored.or_else(|| finite_range(spec.learned.iter().map(|p| &p.1))))
    });

    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.caption, (FONT_FAMILY, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .label_style((FONT_FAMILY, 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| err(&e))?;

        let truth_style = ShapeStyle::from(RGBColor(120, 120, 120)).stroke_width(2);
        let learned_style = ShapeStyle::from(RGBColor(31, 119, 180)).stroke_width(2);
        let point_style = ShapeStyle::from(RGBColor(214, 39, 40)).filled();

        if !truth.is_empty() {
            draw_line(&mut chart, truth, (x_range, y_range), truth_style, "truth").map_err(|e| err(&e))?;
        }
        draw_line(&mut chart, spec.learned, (x_range, y_range), learned_style, "learned").map_err(|e| err(&e))?;
        if !spec.points.is_empty() {
            chart
                .draw_series(
                    spec.points
                        .iter()
                        .map(|&(x, y)| (x as f64, y as f64))
                        // Out-of-range points would be clamped onto the border.
                        .filter(|&(x, y)| (x_range.0..=x_range.1).contains(&x) && (y_range.0..=y_range.1).contains(&y))
                        .map(|p| Circle::new(p, 2, point_style)),
                )
                .map_err(|e| err(&e))?
                .label("training points")
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, point_style));
        }
        chart
            .configure_series_labels()
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| ViewError::new("cannot draw curve plot: buffer"))
}

type Chart<'b> = ChartContext<
    'b,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

type Pt = (f64, f64);

/// Liang-Barsky clip of segment `a`-`b` to the box; `None` when it lies outside.
fn clip_segment(a: Pt, b: Pt, xr: Pt, yr: Pt) -> Option<(Pt, Pt)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - xr.0), (dx, xr.1 - a.0), (-dy, a.1 - yr.0), (dy, yr.1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Splits a sampled curve into the pieces visible inside the box. plotters clamps
/// out-of-range coordinates to the plot edge, which would draw a wild model as a flat
/// line along the border; cutting the line where it leaves the box avoids that. Breaks
/// also at non-finite samples.
pub(crate) fn visible_pieces(pts: &[(f32, f32)], xr: Pt, yr: Pt) -> Vec<Vec<Pt>> {
    let mut pieces: Vec<Vec<Pt>> = Vec::new();
    let mut open = false;
    for w in pts.windows(2) {
        let (a, b) = ((w[0].0 as f64, w[0].1 as f64), (w[1].0 as f64, w[1].1 as f64));
        let seg = if [a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) { clip_segment(a, b, xr, yr) } else { None };
        match seg {
            Some((s, e)) => {
                // Continue the current piece only when this segment starts where the
                // last one ended (i.e. nothing was clipped in between).
                if !(open && s == a) {
                    pieces.push(vec![s]);
                }
                pieces.last_mut().unwrap().push(e);
                open = e == b;
            }
            None => open = false,
        }
    }
    if pts.len() == 1 {
        let p = (pts[0].0 as f64, pts[0].1 as f64);
        if p.0 >= xr.0 && p.0 <= xr.1 && p.1 >= yr.0 && p.1 <= yr.1 {
            pieces.push(vec![p]);
        }
    }
    pieces
}

/// Draws `pts` clipped to the chart's ranges; the legend entry is attached to the
/// first piece only.
fn draw_line(
    chart: &mut Chart<'_>,
    pts: &[(f32, f32)],
    ranges: (Pt, Pt),
    style: ShapeStyle,
    label: &str,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
    let mut labelled = false;
    for piece in visible_pieces(pts, ranges.0, ranges.1) {
        let ann = chart.draw_series(LineSeries::new(piece, style))?;
        if !labelled {
            ann.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            labelled = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_cut_at_the_box_and_at_nan() {
        let pts = [(0.0, 0.0), (1.0, 0.5), (2.0, 3.0), (3.0, 0.5), (4.0, f32::NAN), (5.0, 0.0), (6.0, 0.5)];
        let p = visible_pieces(&pts, (0.0, 6.0), (-1.0, 1.0));
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0][0], (0.0, 0.0));
        assert_eq!(p[0].last().unwrap().1, 1.0);
        assert_eq!(p[1][0].1, 1.0);
        assert_eq!(*p[1].last().unwrap(), (3.0, 0.5));
        assert_eq!(p[2], vec![(5.0, 0.0), (6.0, 0.5)]);
        assert!(visible_pieces(&[(0.0, 5.0), (1.0, 6.0)], (0.0, 1.0), (0.0, 1.0)).is_empty());
    }
}
