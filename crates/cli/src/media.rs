//! `approxlab video` (a run's frames as MP4 or GIF, plus a high-resolution final frame) and `approxlab zoom` (a
//! smooth exponential zoom into the learned function beside the truth).

use crate::config;
use crate::render::{self, domain_window, Func, Panel, RenderOptions};
use crate::run;
use anyhow::{anyhow, bail, Result};
use approxlab_data::Kind;
use approxlab_view::{
    encode_frames_dir_with_progress, write_png_atomic, Colormap, VideoFormat, VideoOptions, VideoSummary, VideoWriter,
    Window,
};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct VideoArgs {
    pub run: PathBuf,
    /// Frames per second
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// mp4 or gif
    #[arg(long, default_value = "mp4")]
    pub format: String,
    /// Output file (default: RUN/video.mp4 or RUN/video.gif)
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

fn format_and_options(format: &str, fps: u32, colormap: Option<Colormap>) -> Result<(VideoFormat, VideoOptions)> {
    let format = VideoFormat::parse(format).map_err(|e| anyhow!("--format: {e}"))?;
    let options =
        VideoOptions { fps, colormap_palette: colormap.map(approxlab_view::colormap_palette), ..Default::default() };
    options.validate().map_err(|e| anyhow!("--fps: {e}"))?;
    Ok((format, options))
}

/// Encodes `RUN/frames` and writes `RUN/final.png` at high resolution.
pub fn video(args: &VideoArgs) -> Result<VideoSummary> {
    let (config, data, trainer, _) = run::load_run(&args.run)?;
    run::init_threads(config.threads)?;
    let (format, options) = format_and_options(&args.format, args.fps, None)?;
    let out = args.out.clone().unwrap_or_else(|| args.run.join(format!("video.{}", format.name())));
    let summary = encode_with_bar(&args.run.join("frames"), &out, format, &options, args.quiet)?;
    let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
    let size = match data.kind() {
        Kind::ScalarField2d => {
            let (w, h) = render::default_size(data.as_ref(), None);
            Some((1920, (1920 * h / w.max(1)).max(1)))
        }
        Kind::Image { .. } => data.image_shape().map(|(h, w)| ((w * 2) as u32, (h * 2) as u32)),
        _ => Some((1600, 1200)),
    };
    let f = run::model_fn(trainer.model());
    let spinner = crate::progress::spinner("rendering final.png", args.quiet);
    let img = render::render(data.as_ref(), &f, &RenderOptions { size, colormap, ..Default::default() })?;
    spinner.finish_and_clear();
    write_png_atomic(args.run.join("final.png"), &img).map_err(|e| anyhow!("{e}"))?;
    Ok(summary)
}

/// Encodes a folder of frames with a progress bar.
fn encode_with_bar(
    frames: &Path,
    out: &Path,
    format: VideoFormat,
    options: &VideoOptions,
    quiet: bool,
) -> Result<VideoSummary> {
    let bar = crate::progress::bar("encoding", 0, quiet);
    let summary = encode_frames_dir_with_progress(frames, out, format, options, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .map_err(|e| anyhow!("{e}"));
    bar.finish_and_clear();
    summary
}

/// Encodes a run's frames next to it after training (`train --video`).
pub fn encode_run_frames(dir: &Path, quiet: bool) -> Result<VideoSummary> {
    encode_run_frames_at(dir, 30, quiet)
}

/// [`encode_run_frames`] at `fps` frames per second.
pub fn encode_run_frames_at(dir: &Path, fps: u32, quiet: bool) -> Result<VideoSummary> {
    let (format, options) = format_and_options("mp4", fps, None)?;
    encode_with_bar(&dir.join("frames"), &dir.join("video.mp4"), format, &options, quiet)
}

#[derive(clap::Args, Debug)]
pub struct ZoomArgs {
    pub run: PathBuf,
    /// Centre of the zoom X,Y
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true)]
    pub center: String,
    /// Window width of the first frame (default: the data domain's)
    #[arg(long, value_name = "W0")]
    pub from_width: Option<f64>,
    /// Window width of the last frame
    #[arg(long, value_name = "W1")]
    pub to_width: f64,
    /// Number of frames
    #[arg(long, default_value_t = 90)]
    pub frames: u32,
    /// Size of each panel WxH
    #[arg(long, default_value = "480x360", value_name = "WxH")]
    pub size: String,
    /// Add an |error| panel
    #[arg(long)]
    pub error: bool,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// mp4 or gif
    #[arg(long, default_value = "mp4")]
    pub format: String,
    #[arg(long)]
    pub colormap: Option<String>,
    /// Output file (default: RUN/zoom.mp4)
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

/// The window of zoom frame `i` of `n`: widths fall exponentially from `w0` to `w1`, so the zoom looks steady.
pub fn zoom_window(center: (f64, f64), w0: f64, w1: f64, aspect: f64, i: u32, n: u32) -> Result<Window> {
    let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 1.0 };
    let width = w0 * (w1 / w0).powf(t);
    let height = width * aspect;
    Window::new(center.0 - width / 2.0, center.0 + width / 2.0, center.1 - height / 2.0, center.1 + height / 2.0)
        .map_err(|e| anyhow!("{e}"))
}

pub fn zoom(args: &ZoomArgs) -> Result<VideoSummary> {
    let (config, data, trainer, _) = run::load_run(&args.run)?;
    run::init_threads(config.threads)?;
    if data.kind() != Kind::ScalarField2d {
        bail!("zoom: {} is not a 2-D scalar function (zoom works on the Mandelbrot set and similar data)", data.name());
    }
    let center = match args.center.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<Vec<_>, _>>() {
        Ok(v) if v.len() == 2 && v.iter().all(|x| x.is_finite()) => (v[0], v[1]),
        _ => bail!("--center: expected X,Y such as -0.745,0.113, got '{}'", args.center),
    };
    let w0 = args.from_width.unwrap_or(domain_window(data.as_ref())?.width());
    for (flag, w) in [("--from-width", w0), ("--to-width", args.to_width)] {
        if !(w.is_finite() && w > 0.0) {
            bail!("{flag}: must be a positive width, got {w}");
        }
    }
    if args.frames == 0 {
        bail!("--frames: must be at least 1");
    }
    let (w, h) = config::parse_size(&args.size)?;
    let colormap = Colormap::parse(args.colormap.as_deref().unwrap_or(&config.output.colormap))
        .map_err(|e| anyhow!("--colormap: {e}"))?;
    let (format, options) = format_and_options(&args.format, args.fps, Some(colormap))?;
    let out = args.out.clone().unwrap_or_else(|| args.run.join(format!("zoom.{}", format.name())));
    let f = run::model_fn(trainer.model());
    let panels: Vec<Panel> = if args.error { vec![Panel::Truth, Panel::Error] } else { vec![Panel::Truth] };
    let mut writer: Option<VideoWriter> = None;
    // Drawn only on a terminal (indicatif hides it otherwise).
    let bar = crate::progress::bar("zoom", args.frames as u64, args.quiet);
    for i in 0..args.frames {
        let window = zoom_window(center, w0, args.to_width, h as f64 / w as f64, i, args.frames)?;
        let caption = format!("learned  width {:.3e}", window.width());
        let opts = RenderOptions { size: Some((w, h)), window: Some(window), colormap, caption, ..Default::default() };
        let img = render::render_with_panels(data.as_ref(), &f as Func<'_>, &opts, &panels, &[], None)?;
        if writer.is_none() {
            writer = Some(
                VideoWriter::create(&out, format, img.width(), img.height(), &options).map_err(|e| anyhow!("{e}"))?,
            );
        }
        writer.as_mut().expect("created above").push(&img).map_err(|e| anyhow!("{e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    writer.expect("at least one frame").finish().map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_widths_fall_exponentially() {
        let a = zoom_window((0.0, 0.0), 4.0, 0.04, 0.5, 0, 3).unwrap();
        let b = zoom_window((0.0, 0.0), 4.0, 0.04, 0.5, 1, 3).unwrap();
        let c = zoom_window((0.0, 0.0), 4.0, 0.04, 0.5, 2, 3).unwrap();
        assert!((a.width() - 4.0).abs() < 1e-12 && (b.width() - 0.4).abs() < 1e-12 && (c.width() - 0.04).abs() < 1e-12);
        assert!((b.height() - 0.2).abs() < 1e-12);
    }
}
