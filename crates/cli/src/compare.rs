//! `approxlab compare`: several models on the same data with the same budget (equal steps or equal wall time),
//! optionally sized to the same parameter count, with a grid video, a loss plot and a results table.

use crate::config::{self, ConfigFlags, RunConfig};
use crate::run;
use anyhow::{anyhow, bail, Context, Result};
use approxlab_data::Dataset;
use approxlab_engine::network::NetworkConfig;
use approxlab_engine::Model;
use approxlab_view::{
    hstack_with, label_panel, plot_loss_curves, vstack, write_png_atomic, LossSeries, RgbImage, VideoFormat,
    VideoOptions, VideoWriter, PANEL_BACKGROUND,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Run configs (TOML, as for `train --config`), one per model
    #[arg(required = true, value_name = "CONFIG.toml")]
    pub configs: Vec<PathBuf>,
    /// Equal wall-clock budget for every model, e.g. 60s
    #[arg(long, value_name = "DURATION", conflicts_with = "steps")]
    pub time: Option<String>,
    /// Equal step budget for every model
    #[arg(long)]
    pub steps: Option<u64>,
    /// Size each network's width so that every model has about N parameters
    #[arg(long, value_name = "N")]
    pub match_params: Option<usize>,
    /// Data set for every model (default: the first config's)
    #[arg(long)]
    pub data: Option<String>,
    /// Set a key in every config, e.g. --set train.batch=1024
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Parent directory of the comparison
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Name of the comparison directory (default: compare-<timestamp>)
    #[arg(long)]
    pub name: Option<String>,
    /// Frames per model in the grid video
    #[arg(long, default_value_t = 60)]
    pub frames: u32,
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
    /// mp4 or gif
    #[arg(long, default_value = "mp4")]
    pub format: String,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct ResultRow {
    pub model: String,
    pub encoding: String,
    pub network: String,
    pub params: usize,
    pub steps: u64,
    pub wall_s: f64,
    pub train_loss: Option<f64>,
    pub eval_mse: f64,
    pub psnr: Option<f64>,
    /// Classification: accuracy on (part of) the training set at the last epoch, on validation, and on the test set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
}

/// The width that brings the model's parameter count closest to `target`, keeping everything else.
pub fn match_width(config: &RunConfig, data: &dyn Dataset, target: usize) -> Result<RunConfig> {
    let count = |width: usize| -> Result<usize> {
        let mut c = config.model.clone();
        set_width(&mut c.network, width);
        Ok(Model::new(c, data.domain(), data.output_dims(), config.seed)?.n_params())
    };
    if matches!(config.model.network, NetworkConfig::Linear {}) {
        bail!("--match-params: a linear network has no width to change");
    }
    // Parameter counts grow monotonically with the width: bisect.
    let (mut lo, mut hi) = (1usize, 1usize);
    while count(hi)? < target && hi < 1 << 14 {
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if count(mid)? < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let best = if target.abs_diff(count(lo)?) <= target.abs_diff(count(hi)?) { lo } else { hi };
    let mut out = config.clone();
    set_width(&mut out.model.network, best);
    Ok(out)
}

fn set_width(network: &mut NetworkConfig, w: usize) {
    match network {
        NetworkConfig::Mlp { width, .. } | NetworkConfig::Skip { width, .. } | NetworkConfig::Siren { width, .. } => {
            *width = w
        }
        NetworkConfig::Linear {} => {}
    }
}

fn label_for(path: &Path, taken: &[String]) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
    let mut label = stem.clone();
    let mut k = 2;
    while taken.contains(&label) {
        label = format!("{stem}-{k}");
        k += 1;
    }
    label
}

/// The directory a comparison writes to, refused when it exists.
pub fn comparison_dir(args: &CompareArgs) -> Result<PathBuf> {
    let name = args.name.clone().unwrap_or_else(|| format!("compare-{}", chrono::Local::now().format("%Y%m%d-%H%M%S")));
    let dir = args.out.join(&name);
    if dir.exists() {
        bail!("compare {}: already exists; choose another --name", dir.display());
    }
    Ok(dir)
}

/// The flags every model of a comparison gets: the same budget, seed and threads, and its run directory `dir/label`.
pub fn model_flags(args: &CompareArgs, dir: &Path, label: &str) -> ConfigFlags {
    ConfigFlags {
        data: args.data.clone(),
        steps: args.steps,
        time: args.time.clone(),
        seed: args.seed,
        threads: args.threads,
        out: Some(dir.to_path_buf()),
        name: Some(label.to_string()),
        set: args.set.clone(),
        ..Default::default()
    }
}

pub fn compare(args: &CompareArgs) -> Result<PathBuf> {
    check_args(args)?;
    let dir = comparison_dir(args)?;
    // Every model gets the first config's (or --data's) data set, the same budget, seed and frame schedule.
    let mut models = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let first_data = config::read_config_file(&args.configs[0])?.data;
    for path in &args.configs {
        let label = label_for(path, &labels);
        let flags = ConfigFlags {
            config: Some(path.clone()),
            data_spec: if args.data.is_none() { Some(first_data.clone()) } else { None },
            ..model_flags(args, &dir, &label)
        };
        let c = config::resolve(&flags).with_context(|| format!("compare {}", path.display()))?;
        labels.push(label.clone());
        models.push((label, c));
    }
    compare_models(args, &dir, models)
}

fn check_args(args: &CompareArgs) -> Result<()> {
    if args.time.is_none() && args.steps.is_none() {
        bail!("compare: give an equal budget for all models with --steps N or --time DURATION");
    }
    if args.frames == 0 {
        bail!("--frames: must be at least 1");
    }
    Ok(())
}

/// Trains resolved configs, one per `(label, config)`, on the first one's data under `args`' budget, into `dir`;
/// `args.configs` is not read.
pub fn compare_models(args: &CompareArgs, dir: &Path, models: Vec<(String, RunConfig)>) -> Result<PathBuf> {
    check_args(args)?;
    let format = VideoFormat::parse(&args.format).map_err(|e| anyhow!("--format: {e}"))?;
    let video_options = VideoOptions { fps: args.fps, ..Default::default() };
    video_options.validate().map_err(|e| anyhow!("--fps: {e}"))?;
    let dir = dir.to_path_buf();
    let (labels, mut configs): (Vec<String>, Vec<RunConfig>) = models.into_iter().unzip();
    let first = &configs[0];
    run::init_threads(first.threads)?;
    let data = run::build_dataset(first)?;
    for c in configs.iter_mut() {
        run::fit_to_data(c, data.as_ref());
    }
    if let Some(target) = args.match_params {
        for c in configs.iter_mut() {
            *c = match_width(c, data.as_ref(), target)?;
        }
    }
    for c in configs.iter_mut() {
        c.budget.epochs = None;
        c.budget.steps = args.steps;
        c.budget.time = args.time.clone();
        match (args.steps, c.budget.time_limit()?) {
            (Some(s), _) => {
                c.output.frame_every = (s / args.frames as u64).max(1);
                c.output.frame_seconds = 0.0;
            }
            (None, Some(t)) => {
                c.output.frame_every = 0;
                c.output.frame_seconds = t.as_secs_f64() / args.frames as f64;
            }
            _ => {}
        }
        if c.output.frame_size.is_none() {
            // Tiles smaller than a training frame keep the grid video a sensible size.
            let (w, h) = crate::render::default_frame_size(data.as_ref());
            let tile_w = w.min(320);
            c.output.frame_size = Some(format!("{tile_w}x{}", (tile_w * h / w.max(1)).max(1)));
        }
        c.output.frame_panels.clear();
        config::validate(c)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("compare {}: cannot create", dir.display()))?;
    run::install_ctrlc();
    let mut rows = Vec::new();
    for (c, label) in configs.iter().zip(&labels) {
        if !args.quiet {
            eprintln!("training {label} ({}/{})", rows.len() + 1, configs.len());
        }
        let mut trainer = run::build_trainer(c, data.as_ref())?;
        let run_dir = run::create_run_dir(c)?;
        approxlab_engine::checkpoint::atomic_write(&run_dir.join("config.toml"), config::to_toml(c).as_bytes())?;
        let outcome = crate::run_loop::train_loop(
            c,
            &run_dir,
            data.clone(),
            &mut trainer,
            crate::run_loop::Session::new(args.quiet),
        )?;
        rows.push(ResultRow::of_run(label, &run_dir, &outcome.summary));
        if outcome.status == crate::run_loop::RunStatus::Interrupted {
            bail!("compare: interrupted while training {label}; the finished runs are in {}", dir.display());
        }
        if data.kind() != approxlab_data::Kind::Table {
            run::render_final(&run_dir, c, data.as_ref(), trainer.model())?;
        }
    }
    write_results(&dir, &rows, args.time.is_some())?;
    write_grid_video(&dir, &labels, &rows, format, &video_options, args.quiet)?;
    Ok(dir)
}

impl ResultRow {
    /// The row of a finished run, from its summary and metrics.
    pub fn of_run(label: &str, run_dir: &Path, summary: &crate::summary::Summary) -> ResultRow {
        let part = |name: &str| {
            summary.parts.iter().find(|p| p.part == name).map_or_else(|| "-".to_string(), |p| p.description.clone())
        };
        ResultRow {
            model: label.to_string(),
            encoding: part("encoding"),
            network: part("network"),
            params: summary.params,
            steps: summary.steps,
            wall_s: summary.wall_s,
            train_loss: summary.train_loss,
            eval_mse: summary.eval.mse,
            psnr: summary.eval.psnr,
            train_accuracy: last_train_accuracy(&run_dir.join("metrics.jsonl")),
            val_accuracy: summary.eval.accuracy,
            test_accuracy: summary.test.as_ref().and_then(|t| t.accuracy),
        }
    }
}

/// A results table: column names, and one row of cells per model.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn markdown(&self) -> String {
        let numeric = |c: &str| !matches!(c, "model" | "encoding" | "network");
        let mut md = format!("| {} |\n|", self.columns.join(" | "));
        for c in &self.columns {
            md += if numeric(c) { "---:|" } else { "---|" };
        }
        md += "\n";
        for r in &self.rows {
            md += &format!("| {} |\n", r.join(" | "));
        }
        md
    }
}

/// The table of `rows`: accuracies for classification, MSE and PSNR otherwise.
pub fn results_table(rows: &[ResultRow]) -> Table {
    let classification = rows.iter().any(|r| r.val_accuracy.is_some());
    let mut columns = vec!["model", "encoding", "network", "params", "steps", "wall s", "train loss"];
    columns.extend(if classification { ["train acc", "val acc", "test acc"] } else { ["eval MSE", "PSNR dB", ""] });
    columns.retain(|c| !c.is_empty());
    let pct = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.2} %", 100.0 * a));
    let cells = |r: &ResultRow| {
        let mut cells = vec![
            r.model.clone(),
            r.encoding.clone(),
            r.network.clone(),
            r.params.to_string(),
            r.steps.to_string(),
            format!("{:.1}", r.wall_s),
            r.train_loss.map_or("-".into(), |l| format!("{l:.4e}")),
        ];
        if classification {
            cells.extend([pct(r.train_accuracy), pct(r.val_accuracy), pct(r.test_accuracy)]);
        } else {
            cells.extend([format!("{:.4e}", r.eval_mse), r.psnr.map_or("-".into(), |p| format!("{p:.2}"))]);
        }
        cells
    };
    Table { columns: columns.into_iter().map(String::from).collect(), rows: rows.iter().map(cells).collect() }
}

fn write_results(dir: &Path, rows: &[ResultRow], by_time: bool) -> Result<()> {
    let json = serde_json::to_string_pretty(rows)?;
    approxlab_engine::checkpoint::atomic_write(&dir.join("results.json"), json.as_bytes())?;
    let md = results_table(rows).markdown();
    approxlab_engine::checkpoint::atomic_write(&dir.join("results.md"), md.as_bytes())?;
    let series: Vec<LossSeries> = rows
        .iter()
        .map(|r| {
            let points = read_losses(&dir.join(&r.model).join("metrics.jsonl"), by_time).unwrap_or_default();
            LossSeries { label: r.model.clone(), points }
        })
        .collect();
    let plot = plot_loss_curves(&series, if by_time { "training time (s)" } else { "step" }, 900, 560)
        .map_err(|e| anyhow!("{e}"))?;
    write_png_atomic(dir.join("loss.png"), &plot).map_err(|e| anyhow!("{e}"))
}

fn last_train_accuracy(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["train"]["accuracy"].as_f64())
}

pub fn read_losses(path: &Path, by_time: bool) -> Result<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let x = if by_time { v["wall_s"].as_f64()? } else { v["step"].as_f64()? };
            Some((x, v["loss"].as_f64()?))
        })
        .collect())
}

fn frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list frames", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    Ok(files)
}

/// One labelled tile per model, all at the same training moment (frame index), in a near-square grid.
fn write_grid_video(
    dir: &Path,
    labels: &[String],
    rows: &[ResultRow],
    format: VideoFormat,
    options: &VideoOptions,
    quiet: bool,
) -> Result<()> {
    let frames: Vec<Vec<PathBuf>> =
        labels.iter().map(|l| frame_files(&dir.join(l).join("frames"))).collect::<Result<_>>()?;
    let count = frames.iter().map(Vec::len).max().unwrap_or(0);
    if count == 0 {
        return Ok(());
    }
    let cols = (labels.len() as f64).sqrt().ceil() as usize;
    let mut writer: Option<VideoWriter> = None;
    let mut last = None;
    let bar = crate::progress::bar("grid video", count as u64, quiet);
    for k in 0..count {
        let tiles: Vec<RgbImage> = frames
            .iter()
            .zip(rows)
            .map(|(files, row)| -> Result<RgbImage> {
                // A model with fewer frames (time budgets) holds its last one.
                let path = &files[k.min(files.len() - 1)];
                let img = image::open(path).with_context(|| format!("{}: cannot read", path.display()))?.to_rgb8();
                label_panel(&img, &format!("{}  {} params", row.model, row.params)).map_err(|e| anyhow!("{e}"))
            })
            .collect::<Result<_>>()?;
        let lines: Vec<RgbImage> = tiles
            .chunks(cols)
            .map(|chunk| hstack_with(&chunk.iter().collect::<Vec<_>>(), 6, PANEL_BACKGROUND))
            .collect();
        let grid = vstack(&lines.iter().collect::<Vec<_>>(), 6);
        if writer.is_none() {
            let path = dir.join(format!("grid.{}", format.name()));
            writer = Some(
                VideoWriter::create(&path, format, grid.width(), grid.height(), options).map_err(|e| anyhow!("{e}"))?,
            );
        }
        // Tiles of different heights would change the grid's size; pad to the first frame's.
        let grid = fit(&grid, writer.as_ref().expect("created").frame_size());
        writer.as_mut().expect("created").push(&grid).map_err(|e| anyhow!("{e}"))?;
        last = Some(grid);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(w) = writer {
        w.finish().map_err(|e| anyhow!("{e}"))?;
    }
    if let Some(img) = last {
        write_png_atomic(dir.join("grid.png"), &img).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

fn fit(img: &RgbImage, (w, h): (u32, u32)) -> RgbImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    let mut out = RgbImage::from_pixel(w, h, image::Rgb(PANEL_BACKGROUND));
    image::imageops::overlay(&mut out, img, 0, 0);
    out
}
