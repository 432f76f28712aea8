//! Loss curves of several runs on one log-scale plot, for comparisons.

use image::RgbImage;
use plotters::prelude::*;

use crate::error::ViewError;
use crate::text::{ensure_font, FONT_FAMILY};

/// One run's curve: `(x, loss)` points with x the step or the training time.
#[derive(Clone, Debug)]
pub struct LossSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// matplotlib's tab10: distinct colours for up to ten runs, then repeated.
pub(crate) const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// The colour [`plot_loss_curves`] and [`crate::plot_metric_curves`] give the
/// `index`-th series (matplotlib's tab10, repeating after ten).
pub fn series_color(index: usize) -> [u8; 3] {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    [r, g, b]
}

/// Draws every series (non-positive and non-finite losses are left out, as a log axis cannot show them).
pub fn plot_loss_curves(series: &[LossSeries], x_label: &str, width: u32, height: u32) -> Result<RgbImage, ViewError> {
    plot_log_curves(series, &LogPlot { title: "training loss", x_label, y_label: "loss", width, height })
}

/// Titles and size of a [`plot_log_curves`] plot.
#[derive(Clone, Copy, Debug)]
pub struct LogPlot<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub width: u32,
    pub height: u32,
}

/// Curves on a linear x axis and a log y axis, each in its own colour with a legend (non-positive and non-finite
/// values are left out).
pub fn plot_log_curves(series: &[LossSeries], plot: &LogPlot<'_>) -> Result<RgbImage, ViewError> {
    let LogPlot { title, x_label, y_label, width, height } = *plot;
    ensure_font();
    let err = |e: &dyn std::fmt::Display| ViewError::new(format!("cannot draw plot '{title}': {e}"));
    let valid = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && y > 0.0;
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied().filter(valid)).collect();
    if all.is_empty() {
        return Err(ViewError::new(format!("cannot draw plot '{title}': no positive finite values")));
    }
    let (mut x0, mut x1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut y0, mut y1) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    x0 = x0.min(0.0);
    if y1 <= y0 {
        y1 = y0 * 10.0;
    }
    y0 /= 1.5;
    y1 *= 1.5;
    let (w, h) = (width.max(1), height.max(1));
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style((FONT_FAMILY, 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, s) in series.iter().enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let style = ShapeStyle::from(RGBColor(r, g, b)).stroke_width(2);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied().filter(valid), style))
                .map_err(|e| err(&e))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
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
    RgbImage::from_raw(w, h, buf).ok_or_else(|| err(&"buffer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_in_its_colour() {
        let a = LossSeries { label: "a".into(), points: (1..100).map(|i| (i as f64, 1.0 / i as f64)).collect() };
        let b = LossSeries { label: "b".into(), points: (1..100).map(|i| (i as f64, 0.5 / i as f64)).collect() };
        let img = plot_loss_curves(&[a, b], "step", 400, 300).unwrap();
        assert_eq!(img.dimensions(), (400, 300));
        let has = |c: (u8, u8, u8)| img.pixels().any(|p| p.0 == [c.0, c.1, c.2]);
        assert!(has(PALETTE[0]) && has(PALETTE[1]));
        let empty = LossSeries { label: "nan".into(), points: vec![(1.0, f64::NAN), (2.0, 0.0)] };
        assert!(plot_loss_curves(&[empty], "step", 400, 300).is_err());
    }
}
