//! Rendering for approxlab: turns a function (a trained model or a ground truth) into
//! pictures a person can look at.
//!
//! Everything here works on a plain closure, [`Func`], mapping a row-major batch of
//! points `[n, in_dims]` to outputs `[n, out_dims]`, so this crate knows nothing about
//! the engine or the data sets. The caller decides how a model is wrapped.
//!
//! * [`Window`], [`ImageDomain`], [`Domain`]: where to sample and in which axis order.
//! * [`Colormap`]: matplotlib-compatible colour maps with a fixed `[0, 1]` range.
//! * [`render_scalar`], [`render_rgb`], [`render_image`], [`render_error`]: tiled,
//!   parallel evaluation of 2-D fields.
//! * [`plot_curve`]: 1-D function plots (plotters, embedded font).
//! * [`plot_loss_curves`], [`plot_metric_curves`]: training curves of one or more runs.
//! * [`digit_grid`], [`confusion_matrix_image`]: what a classifier gets right and wrong.
//! * [`render_neurons`]: every unit of a network as a tile of its output (the neurons' view).
//! * [`render_surface`]: software rasteriser for parametric surfaces.
//! * [`hstack`], [`vstack`], [`caption_bar`], [`label_panel`]: composition.
//! * [`test_card`]: a generated picture to learn when no image is at hand.
//! * [`write_png_atomic`]: crash-safe PNG output.
//! * [`VideoWriter`], [`encode_frames_dir`]: MP4 (H.264) and GIF videos of frames.
//!
//! No system libraries are used: the font (DejaVu Sans, see `assets/`) is compiled in.

mod classify;
mod colormap;
mod compose;
mod error;
mod field;
mod losses;
mod neurons;
mod plot;
mod png_out;
mod surface;
mod testcard;
mod text;
mod video;
mod window;

pub use classify::{
    confusion_matrix_image, confusion_matrix_layout, digit_grid, digit_grid_size, plot_metric_curves, ConfusionLayout,
    CONFUSION_COLORMAP, CONFUSION_MARGIN, DIGIT_BORDER, DIGIT_GAP, DIGIT_LABEL_HEIGHT, RIGHT_COLOR, WRONG_COLOR,
};
pub use colormap::{Colormap, UnknownColormap, NAN_COLOR};
pub use compose::{caption_bar, hstack, hstack_with, label_panel, vstack, CAPTION_BAR_HEIGHT, PANEL_BACKGROUND};
pub use error::ViewError;
pub use field::{
    render_error, render_image, render_image_native, render_rgb, render_scalar, render_scalar_range, Channels,
    DEFAULT_TILE_ROWS,
};
pub use image::RgbImage;
pub use losses::{plot_log_curves, plot_loss_curves, series_color, LogPlot, LossSeries};
pub use neurons::{render_neurons, NeuronGrid, NeuronLayerValues, MAX_UNITS_SHOWN};
pub use plot::{plot_curve, sample_curve, CurveSpec};
pub use png_out::write_png_atomic;
pub use surface::{render_surface, Bounds, Camera, SurfaceSpec, View};
pub use testcard::test_card;
pub use text::draw_text;
pub use video::{
    colormap_palette, default_bitrate, encode_frames_dir, encode_frames_dir_with_progress, VideoFormat, VideoOptions,
    VideoSummary, VideoWriter, DEFAULT_BITS_PER_PIXEL, DEFAULT_FPS, MAX_FPS, MIN_DEFAULT_BITRATE,
};
pub use window::{parse_size, Domain, ImageCoords, ImageDomain, Window, WindowError};

/// A function to render: `f(points, out)` with `points` row-major `[n, in_dims]` and
/// `out` row-major `[n, out_dims]`, `n` being the same for both.
///
/// `Sync` because tiles are evaluated in parallel on the rayon pool.
pub type Func<'a> = &'a (dyn Fn(&[f32], &mut [f32]) + Sync);
