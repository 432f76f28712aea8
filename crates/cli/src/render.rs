//! Renders a function (a trained model or the ground truth) the way its data set is looked at: a heatmap for scalar
//! 2-D data, the picture for images, a plot for curves, a lit mesh for surfaces.

use anyhow::{anyhow, bail, Result};
use approxlab_data::{Dataset, Kind};
use approxlab_view::{
    confusion_matrix_image, digit_grid, hstack, label_panel, plot_curve, plot_loss_curves, plot_metric_curves,
    render_error, render_image, render_scalar, render_surface, sample_curve, Camera, Channels, Colormap, CurveSpec,
    ImageCoords, ImageDomain, LossSeries, RgbImage, SurfaceSpec, Window, DEFAULT_TILE_ROWS,
};

/// A function over the data set's inputs: `[n, input_dims] -> [n, output_dims]`.
pub type Func<'a> = &'a (dyn Fn(&[f32], &mut [f32]) + Sync);

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub size: Option<(u32, u32)>,
    pub window: Option<Window>,
    pub colormap: Colormap,
    pub caption: String,
    /// Draw the truth under a curve or as a wireframe over a surface.
    pub overlay_truth: bool,
    /// Camera angle around the vertical axis for surfaces (radians); the view's default when absent.
    pub yaw: Option<f32>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            size: None,
            window: None,
            colormap: Colormap::Inferno,
            caption: String::new(),
            overlay_truth: true,
            yaw: None,
        }
    }
}

/// The window of a 2-D data set's domain.
pub fn domain_window(data: &dyn Dataset) -> Result<Window> {
    let d = data.domain();
    Window::new(d[0].0, d[0].1, d[1].0, d[1].1).map_err(|e| anyhow!("{e}"))
}

/// The default render size: the image's own for images, 800 wide with the domain's aspect for 2-D fields.
pub fn default_size(data: &dyn Dataset, window: Option<&Window>) -> (u32, u32) {
    match data.kind() {
        Kind::Image { .. } => data.image_shape().map(|(h, w)| (w as u32, h as u32)).unwrap_or((512, 512)),
        Kind::ScalarField2d => {
            let w = window.copied().or_else(|| domain_window(data).ok());
            let aspect = w.map(|w| w.height() / w.width()).unwrap_or(1.0);
            (800, ((800.0 * aspect).round() as u32).clamp(1, 16384))
        }
        _ => (800, 600),
    }
}

/// The default size of training frames: 480 pixels wide (320 for images smaller than that, scaled up so that the
/// caption fits), images larger than 480 at their own size.
pub fn default_frame_size(data: &dyn Dataset) -> (u32, u32) {
    let (w, h) = default_size(data, None);
    let target = match data.kind() {
        Kind::Image { .. } if w >= 480 => return (w, h),
        Kind::Image { .. } => 320,
        _ => 480,
    };
    (target, (target * h / w.max(1)).max(1))
}

pub fn render(data: &dyn Dataset, f: Func<'_>, opts: &RenderOptions) -> Result<RgbImage> {
    let truth = |x: &[f32], out: &mut [f32]| {
        if !data.truth(x, out) {
            out.fill(f32::NAN);
        }
    };
    let has_truth = data.has_truth();
    if opts.window.is_some() && !matches!(data.kind(), Kind::ScalarField2d) {
        bail!("--window applies to 2-D scalar data such as the Mandelbrot set, not to {}", data.name());
    }
    let (w, h) = opts.size.unwrap_or_else(|| default_size(data, opts.window.as_ref()));
    // The picture, the points and the predictions of its pixels (rendered in tiles, but counted whole: a bound).
    let per_pixel = 3 + 4 * (data.input_dims() + data.output_dims());
    approxlab_engine::limits::check_memory(&format!("a render of {w}x{h}"), w as f64 * h as f64 * per_pixel as f64)
        .map_err(|e| anyhow!("{e}"))?;
    let captioned = |img: RgbImage| -> Result<RgbImage> {
        if opts.caption.is_empty() {
            Ok(img)
        } else {
            label_panel(&img, &opts.caption).map_err(|e| anyhow!("{e}"))
        }
    };
    Ok(match data.kind() {
        Kind::ScalarField2d => {
            let window = match opts.window {
                Some(w) => w,
                None => domain_window(data)?,
            };
            captioned(render_scalar(f, window, w, h, opts.colormap, DEFAULT_TILE_ROWS))?
        }
        Kind::Image { channels } => {
            let (rows, cols) = data.image_shape().ok_or_else(|| anyhow!("image data set without a shape"))?;
            let domain = ImageDomain::new(rows as u32, cols as u32, ImageCoords::Index);
            let channels = if channels == 1 { Channels::Gray } else { Channels::Rgb };
            captioned(render_image(f, channels, &domain, w, h, DEFAULT_TILE_ROWS))?
        }
        Kind::Curve => {
            let (x0, x1) = data.domain()[0];
            let learned = sample_curve(f, x0, x1, (w as usize).max(2));
            let truth_samples =
                (has_truth && opts.overlay_truth).then(|| sample_curve(&truth, x0, x1, (w as usize).max(2)));
            let points: Vec<(f32, f32)> = data
                .training_points()
                .map(|(x, y)| x.iter().zip(y).map(|(a, b)| (*a, *b)).collect())
                .unwrap_or_default();
            let spec = CurveSpec {
                truth: truth_samples.as_deref(),
                points: &points,
                caption: opts.caption.clone(),
                width: w,
                height: h,
                ..CurveSpec::new(&learned)
            };
            plot_curve(&spec).map_err(|e| anyhow!("{e}"))?
        }
        Kind::Surface => {
            let d = data.domain();
            let points: Vec<[f32; 3]> = data
                .training_points()
                .map(|(_, y)| y.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect())
                .unwrap_or_default();
            let spec = SurfaceSpec {
                truth: (has_truth && opts.overlay_truth).then_some(&truth as Func<'_>),
                points: &points,
                caption: opts.caption.clone(),
                width: w,
                height: h,
                ..SurfaceSpec::new(f, (d[0].0 as f32, d[0].1 as f32), (d[1].0 as f32, d[1].1 as f32))
            };
            let spec = match opts.yaw {
                Some(yaw) => SurfaceSpec { camera: Camera { yaw, ..spec.camera }, ..spec },
                None => spec,
            };
            render_surface(&spec).map_err(|e| anyhow!("{e}"))?
        }
        Kind::Classification { .. } | Kind::Table => bail!("{} has no picture to render", data.name()),
    })
}

/// Extra panels beside the learned function in frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Panel {
    /// The ground truth, rendered the same way.
    Truth,
    /// |learned - truth| on the same colormap, 0 to 0.5 (2-D data only).
    Error,
    /// The training loss so far, log scale.
    Loss,
    /// Every neuron's output over the window (1-D and 2-D inputs): the encoding's features, then each layer.
    Neurons,
}

/// Whether the neurons' view can draw this data: its inputs must be 1-D or 2-D.
pub fn neurons_drawable(data: &dyn Dataset) -> Result<()> {
    match data.input_dims() {
        1 | 2 => Ok(()),
        d => bail!("the neurons view needs 1-D or 2-D inputs, and {} has {d}", data.name()),
    }
}

/// The neurons' view of `model` on `data` over `window` (2-D scalar fields; the whole domain when `None`).
pub fn render_neurons(data: &dyn Dataset, model: &approxlab_engine::Model, window: Option<Window>) -> Result<RgbImage> {
    neurons_drawable(data)?;
    let domain = data.domain();
    // The widest layer sets the tile size: one point through the model tells every layer's width.
    let centre: Vec<f32> = domain.iter().map(|(lo, hi)| ((lo + hi) / 2.0) as f32).collect();
    let units = model.neurons(&centre).map_err(|e| anyhow!("{e}"))?.iter().map(|l| l.units).max().unwrap_or(0);
    let (grid, points) = if data.input_dims() == 1 {
        let grid = approxlab_view::NeuronGrid::for_units(1, units, 1.0);
        let (x0, x1, n) = (domain[0].0, domain[0].1, grid.points());
        (grid, (0..n).map(|i| (x0 + (i as f64 + 0.5) / n as f64 * (x1 - x0)) as f32).collect::<Vec<f32>>())
    } else {
        let sampled: approxlab_view::Domain = match data.kind() {
            Kind::Image { .. } => {
                let (rows, cols) = data.image_shape().ok_or_else(|| anyhow!("image data set without a shape"))?;
                ImageDomain::new(rows as u32, cols as u32, ImageCoords::Index).into()
            }
            _ => match window {
                Some(w) => w.into(),
                None => {
                    Window::new(domain[0].0, domain[0].1, domain[1].0, domain[1].1).map_err(|e| anyhow!("{e}"))?.into()
                }
            },
        };
        let aspect = match sampled {
            approxlab_view::Domain::Xy(w) => w.height() / w.width(),
            approxlab_view::Domain::RowCol(d) => d.rows as f64 / d.cols as f64,
        };
        let grid = approxlab_view::NeuronGrid::for_units(2, units, aspect);
        let approxlab_view::NeuronGrid::Field { cols, rows } = grid else { unreachable!("a 2-D grid") };
        (grid, sampled.points(cols as u32, rows as u32, 0..rows as u32))
    };
    let layers = model.neurons(&points).map_err(|e| anyhow!("{e}"))?;
    let views: Vec<approxlab_view::NeuronLayerValues> = layers
        .iter()
        .map(|l| approxlab_view::NeuronLayerValues { name: &l.name, units: l.units, values: &l.values })
        .collect();
    approxlab_view::render_neurons(&views, grid).map_err(|e| anyhow!("{e}"))
}

/// The learned function with the requested panels beside it, each labelled.
pub fn render_with_panels(
    data: &dyn Dataset,
    f: Func<'_>,
    opts: &RenderOptions,
    panels: &[Panel],
    losses: &[(f64, f64)],
    model: Option<&approxlab_engine::Model>,
) -> Result<RgbImage> {
    let learned = render(data, f, opts)?;
    if panels.is_empty() {
        return Ok(learned);
    }
    let truth = |x: &[f32], out: &mut [f32]| {
        if !data.truth(x, out) {
            out.fill(f32::NAN);
        }
    };
    let bare = RenderOptions { caption: String::new(), ..opts.clone() };
    let mut images = vec![learned];
    for panel in panels {
        let img = match (panel, data.kind()) {
            (Panel::Truth, _) => render(data, &truth, &bare)?,
            (Panel::Error, Kind::ScalarField2d | Kind::Image { .. }) => {
                let (w, h) = opts.size.unwrap_or_else(|| default_size(data, opts.window.as_ref()));
                if let Kind::Image { .. } = data.kind() {
                    let (rows, cols) = data.image_shape().ok_or_else(|| anyhow!("image data set without a shape"))?;
                    let domain = ImageDomain::new(rows as u32, cols as u32, ImageCoords::Index);
                    render_error(f, &truth, data.output_dims(), domain, w, h, opts.colormap, 0.5, DEFAULT_TILE_ROWS)
                } else {
                    let window = match opts.window {
                        Some(w) => w,
                        None => domain_window(data)?,
                    };
                    render_error(f, &truth, data.output_dims(), window, w, h, opts.colormap, 0.5, DEFAULT_TILE_ROWS)
                }
            }
            (Panel::Error, _) => {
                bail!("the error panel needs 2-D data (an image or a scalar field), not {}", data.name())
            }
            (Panel::Neurons, _) => {
                let model = model.ok_or_else(|| anyhow!("the neurons panel needs the model, not just its function"))?;
                render_neurons(data, model, opts.window)?
            }
            (Panel::Loss, _) => {
                let (w, h) = images[0].dimensions();
                let series = [LossSeries { label: "train".into(), points: losses.to_vec() }];
                match plot_loss_curves(&series, "step", w, h.saturating_sub(approxlab_view::CAPTION_BAR_HEIGHT).max(1))
                {
                    Ok(img) => img,
                    // Before the first logged loss there is nothing to plot: an empty panel keeps the layout.
                    Err(_) => RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255])),
                }
            }
        };
        let label = match panel {
            Panel::Truth => "truth",
            Panel::Error => "|error|",
            Panel::Loss => "loss",
            Panel::Neurons => "neurons",
        };
        images.push(label_panel(&img, label).map_err(|e| anyhow!("{e}"))?);
    }
    // Panels without a caption bar are shorter than a captioned learned view: pad them by stacking on a common height.
    let refs: Vec<&RgbImage> = images.iter().collect();
    Ok(hstack(&refs, 6))
}

/// Accuracy per epoch: `(epoch, train, validation)`.
pub type AccuracyHistory = [(f64, f64, f64)];

/// A classification frame: sample inputs with their predicted labels (when the inputs are square images, such as
/// MNIST's 28x28), the confusion matrix on the validation set, and the accuracy curves so far.
pub fn render_classification(
    data: &dyn Dataset,
    f: Func<'_>,
    caption: &str,
    history: Option<&AccuracyHistory>,
) -> Result<RgbImage> {
    const SAMPLES: usize = 32;
    const CONFUSION_POINTS: usize = 2000;
    let classes = data.classes().ok_or_else(|| anyhow!("{} is not a classification data set", data.name()))?;
    let eval = data.eval_set();
    let d = data.input_dims();
    let n = eval.len(d).min(CONFUSION_POINTS);
    let mut pred = vec![0.0; n * classes];
    f(&eval.inputs[..n * d], &mut pred);
    let targets = &eval.targets[..n * classes];
    let argmax = |row: &[f32]| approxlab_data::argmax(row);
    let mut panels = Vec::new();
    let side = (d as f64).sqrt().round() as usize;
    if side * side == d && side >= 4 {
        let k = n.min(SAMPLES);
        let images: Vec<&[f32]> = (0..k).map(|i| &eval.inputs[i * d..(i + 1) * d]).collect();
        let predicted: Vec<usize> = pred.chunks_exact(classes).take(k).map(argmax).collect();
        let truth: Vec<usize> = targets.chunks_exact(classes).take(k).map(argmax).collect();
        // MNIST pixels are in [0, 1] already; standardised inputs are squashed back into view.
        let (lo, hi) = data.domain()[0];
        let scaled: Vec<Vec<f32>> =
            images.iter().map(|img| img.iter().map(|v| ((*v as f64 - lo) / (hi - lo)) as f32).collect()).collect();
        let refs: Vec<&[f32]> = scaled.iter().map(Vec::as_slice).collect();
        let grid =
            digit_grid(&refs, (side as u32, side as u32), &predicted, &truth, 8, 2).map_err(|e| anyhow!("{e}"))?;
        panels.push(label_panel(&grid, caption).map_err(|e| anyhow!("{e}"))?);
    }
    let matrix = approxlab_data::confusion_matrix(&pred, targets, classes);
    let names = data.class_names().unwrap_or_else(|| (0..classes).map(|c| c.to_string()).collect());
    let cm = confusion_matrix_image(&matrix, &names, 28).map_err(|e| anyhow!("{e}"))?;
    panels.push(label_panel(&cm, "confusion (validation)").map_err(|e| anyhow!("{e}"))?);
    // Without a history (the live view, which plots its own curves) there is no accuracy panel.
    if let Some(history) = history {
        let height = panels.iter().map(|p| p.height()).max().unwrap_or(300).max(200);
        let series = [
            LossSeries { label: "train".into(), points: history.iter().map(|h| (h.0, h.1)).collect() },
            LossSeries { label: "validation".into(), points: history.iter().map(|h| (h.0, h.2)).collect() },
        ];
        let curves = if history.is_empty() {
            RgbImage::from_pixel(360, height - approxlab_view::CAPTION_BAR_HEIGHT, image::Rgb([255, 255, 255]))
        } else {
            plot_metric_curves(
                &series,
                "accuracy",
                "epoch",
                "accuracy",
                None,
                360,
                height - approxlab_view::CAPTION_BAR_HEIGHT,
            )
            .map_err(|e| anyhow!("{e}"))?
        };
        panels.push(label_panel(&curves, "accuracy").map_err(|e| anyhow!("{e}"))?);
    }
    let refs: Vec<&RgbImage> = panels.iter().collect();
    Ok(hstack(&refs, 6))
}
