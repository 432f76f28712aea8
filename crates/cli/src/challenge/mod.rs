//! `approxlab challenge`: trains one entry to the Mandelbrot challenge under its protocol ([`protocol`]), scores
//! it, and writes the score, the pictures and (when asked) a line of the leaderboard. `--score RUN` scores any
//! Mandelbrot run of the protocol's target.

mod leaderboard;
pub mod protocol;

use crate::config::{self, ConfigFlags, RunConfig};
use crate::summary::Summary;
use anyhow::{anyhow, bail, Context, Result};
use approxlab_engine::Model;
use approxlab_view::{hstack, label_panel, write_png_atomic, Colormap, RgbImage};
use protocol::{GridScore, Zoom};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The champion's config, trained when no `--config` is given.
pub const CHAMPION: &str = include_str!("../../../../examples/challenge/champion.toml");

#[derive(clap::Args, Debug)]
pub struct ChallengeArgs {
    /// An entry's config (default: the champion, examples/challenge/champion.toml); its data is replaced by the
    /// protocol's target and its budget by --time
    #[arg(long, short = 'c', value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Training budget, wall clock, target computation included
    #[arg(long, value_name = "DURATION", default_value = "300s")]
    time: String,
    /// Also score this window: CX,CY,WIDTH or a public window's name (repeatable; the public windows are always
    /// scored)
    #[arg(long, value_name = "CX,CY,WIDTH", allow_hyphen_values = true)]
    zoom: Vec<String>,
    /// Parent directory of the run
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Run and entry name (default: the config file's name, or "champion")
    #[arg(long)]
    name: Option<String>,
    /// Score this run under the protocol instead of training one
    #[arg(long, value_name = "RUN")]
    score: Option<PathBuf>,
    /// Record the result in the leaderboard file, whose table stays sorted by PSNR, best first
    #[arg(long)]
    record: bool,
    #[arg(long, value_name = "FILE.md", default_value = "docs/leaderboard.md")]
    leaderboard: PathBuf,
    /// Score grid WxH (default: the protocol's 3840x2425; other sizes are for quick checks and cannot be recorded)
    #[arg(long, value_name = "WxH")]
    grid: Option<String>,
    /// Zoom grid WxH (default: the protocol's 960x540)
    #[arg(long, value_name = "WxH")]
    zoom_grid: Option<String>,
    /// Set any config key of the entry, e.g. --set train.lr=0.02
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, short)]
    quiet: bool,
    /// Watch the entry learn in the browser (elapsed of the budget, loss, samples/s, the learned function to zoom
    /// into); the page stays up after the score until Ctrl-C
    #[arg(long)]
    serve: bool,
    #[command(flatten)]
    listen: crate::ListenArgs,
}

/// The grids a score is taken on: the protocol's unless a quick check asks for smaller ones.
struct Grids {
    full: (usize, usize),
    zoom: (usize, usize),
}

impl Grids {
    fn from_args(args: &ChallengeArgs) -> Result<Grids> {
        let size = |s: &Option<String>, what: &str, default: (usize, usize)| -> Result<(usize, usize)> {
            let Some(s) = s else { return Ok(default) };
            let (w, h) = config::parse_size(s).with_context(|| format!("--{what}"))?;
            if w < 2 || h < 2 {
                bail!("--{what} {s}: needs at least 2x2 points");
            }
            Ok((w as usize, h as usize))
        };
        Ok(Grids {
            full: size(&args.grid, "grid", protocol::GRID)?,
            zoom: size(&args.zoom_grid, "zoom-grid", protocol::ZOOM_GRID)?,
        })
    }

    fn is_protocol(&self) -> bool {
        self.full == protocol::GRID && self.zoom == protocol::ZOOM_GRID
    }
}

pub fn run(args: &ChallengeArgs) -> Result<u8> {
    let grids = Grids::from_args(args)?;
    if args.record && !grids.is_protocol() {
        bail!("--record: only scores on the protocol's grids (3840x2425, zooms 960x540) go on the leaderboard; drop --grid and --zoom-grid");
    }
    let mut zooms = Zoom::public();
    for z in &args.zoom {
        let z = Zoom::parse(z)?;
        if !zooms.contains(&z) {
            zooms.push(z);
        }
    }
    let finish = |dir: &Path, name: &str, complete: bool| -> Result<()> {
        let score = score_run(dir, name, &zooms, &grids, args.quiet)?;
        print_score(&score, dir);
        if args.record && !complete {
            eprintln!("approxlab: not recorded: the entry stopped before its budget was spent");
        } else if args.record {
            leaderboard::record(&args.leaderboard, &score)?;
            println!("recorded in {}", args.leaderboard.display());
        }
        Ok(())
    };
    if let Some(run) = &args.score {
        finish(run, &args.name.clone().unwrap_or_else(|| file_name(run)), true)?;
        return Ok(0);
    }
    let (config, name) = entry_config(args)?;
    if args.serve {
        let after = |dir: &Path| finish(dir, &name, true);
        return Ok(crate::commands::train_served(config, args.quiet, &args.listen, Some(&after))?.1);
    }
    let (dir, code) = crate::commands::train(config, args.quiet)?;
    if code != 0 {
        eprintln!("approxlab: the entry did not finish its budget (exit {code}); scoring what it learned");
    }
    finish(&dir, &name, code == 0)?;
    Ok(code)
}

fn file_name(path: &Path) -> String {
    path.file_stem().map_or("entry".into(), |s| s.to_string_lossy().into_owned())
}

/// The entry's config under the protocol: its data the protocol's target, its budget `--time`.
fn entry_config(args: &ChallengeArgs) -> Result<(RunConfig, String)> {
    humantime::parse_duration(&args.time)
        .map_err(|e| anyhow!("--time '{}': not a duration ({e}); expected e.g. 300s, 5m", args.time))?;
    let (text, origin, default_name) = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("config {}: cannot read", path.display()))?;
            (text, path.display().to_string(), file_name(path))
        }
        None => (CHAMPION.to_string(), "the champion's config".to_string(), "champion".to_string()),
    };
    let given = config::parse_config_text(&text, &origin)?;
    let names_data = toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.contains_key("data"));
    if names_data && !protocol::is_protocol_target(&given.data) {
        eprintln!("notice: the entry's data is replaced by the protocol's target (mandelbrot:periodic, depth 200)");
    }
    let name = args.name.clone().unwrap_or(default_name);
    let flags = ConfigFlags {
        data_spec: Some(protocol::data_spec()),
        time: Some(args.time.clone()),
        out: Some(args.out.clone()),
        name: args.name.clone(),
        seed: args.seed,
        set: args.set.clone(),
        ..Default::default()
    };
    let mut config = config::resolve_text(&text, &origin, &flags)?;
    config.budget = config::Budget { steps: None, epochs: None, time: Some(args.time.clone()) };
    if config.name.is_none() {
        config.name = Some(format!("challenge-{name}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S")));
    }
    config::validate(&config)?;
    Ok((config, name))
}

#[derive(Serialize)]
struct ZoomScore {
    #[serde(flatten)]
    zoom: Zoom,
    #[serde(flatten)]
    score: GridScore,
}

#[derive(Serialize)]
pub struct ScoreFile {
    pub name: String,
    pub psnr: f64,
    pub mse: f64,
    pub boundary_mse: Option<f64>,
    zooms: Vec<ZoomScore>,
    pub steps: u64,
    pub samples: u64,
    pub samples_per_s: f64,
    pub wall_s: f64,
    pub budget: Option<String>,
    /// Whether the grids were the protocol's (only those scores may be compared with the leaderboard).
    pub protocol_grids: bool,
    grid: (usize, usize),
    zoom_grid: (usize, usize),
    pub machine: Machine,
    pub version: String,
    pub date: String,
    scoring_seconds: f64,
    config: String,
}

#[derive(Serialize)]
pub struct Machine {
    pub cpu: String,
    pub threads: usize,
    pub gemm: String,
    pub products: String,
}

pub(crate) fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Scores the run in `dir` on the full grid and every zoom window, and writes `score.json` and the pictures.
fn score_run(dir: &Path, name: &str, zooms: &[Zoom], grids: &Grids, quiet: bool) -> Result<ScoreFile> {
    let (config, _data, trainer, wall) = crate::run::load_run(dir)?;
    if !protocol::is_protocol_target(&config.data) {
        bail!(
            "run {}: not a run of the challenge's target (its data is {}); expected mandelbrot:periodic at depth 200 over [-2.65, 1.15] x [-1.2, 1.2]",
            dir.display(),
            _data.name()
        );
    }
    crate::run::init_threads(config.threads)?;
    let started = Instant::now();
    let model = trainer.model();
    let points = grids.full.0 as f64 * grids.full.1 as f64;
    approxlab_engine::limits::check_memory(
        &format!("a score grid of {}x{}", grids.full.0, grids.full.1),
        points * 32.0,
    )?;
    if !quiet {
        eprintln!("scoring  {}x{} grid and {} zoom windows", grids.full.0, grids.full.1, zooms.len());
    }
    let (full, learned, truth) = score_window(model, protocol::WINDOW, grids.full)?;
    let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
    write_png_atomic(dir.join("full.png"), &picture(&learned, grids.full, colormap)).map_err(|e| anyhow!("{e}"))?;
    write_png_atomic(dir.join("error.png"), &error_picture(&learned, &truth, grids.full))
        .map_err(|e| anyhow!("{e}"))?;
    drop((learned, truth));
    let mut zoom_scores = Vec::new();
    for z in zooms {
        let (score, learned, truth) = score_window(model, z.window(grids.zoom), grids.zoom)?;
        let truth32: Vec<f32> = truth.iter().map(|t| *t as f32).collect();
        let panels = [
            label_panel(&picture(&learned, grids.zoom, colormap), "learned"),
            label_panel(&picture(&truth32, grids.zoom, colormap), "truth"),
            label_panel(&error_picture(&learned, &truth, grids.zoom), "error"),
        ];
        let panels: Vec<RgbImage> = panels.into_iter().collect::<Result<_, _>>().map_err(|e| anyhow!("{e}"))?;
        let side = hstack(&panels.iter().collect::<Vec<_>>(), 8);
        write_png_atomic(dir.join(format!("zoom-{}.png", safe_name(&z.name))), &side).map_err(|e| anyhow!("{e}"))?;
        zoom_scores.push(ZoomScore { zoom: z.clone(), score });
    }
    let summary = Summary::read(dir).ok();
    let steps = trainer.steps_done();
    let samples = steps * config.train.batch as u64;
    let score = ScoreFile {
        name: name.to_string(),
        psnr: full.psnr,
        mse: full.mse,
        boundary_mse: full.boundary_mse,
        zooms: zoom_scores,
        steps,
        samples,
        samples_per_s: summary.as_ref().map_or(samples as f64 / wall.max(1e-9), |s| s.samples_per_s),
        wall_s: wall,
        budget: config.budget.time.clone(),
        protocol_grids: grids.is_protocol(),
        grid: grids.full,
        zoom_grid: grids.zoom,
        machine: Machine {
            cpu: cpu_model(),
            threads: rayon::current_num_threads(),
            gemm: approxlab_engine::openblas::provider().describe(),
            products: trainer.precision().describe.clone(),
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
        scoring_seconds: started.elapsed().as_secs_f64(),
        config: config::to_toml(&config),
    };
    let text = serde_json::to_string_pretty(&score)?;
    approxlab_engine::checkpoint::atomic_write(&dir.join("score.json"), text.as_bytes())?;
    Ok(score)
}

fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// The model's predictions and the f64 truth on one window's grid, and their score.
fn score_window(model: &Model, window: [f64; 4], size: (usize, usize)) -> Result<(GridScore, Vec<f32>, Vec<f64>)> {
    let (inputs, truth) = protocol::grid(window, size);
    let mut learned = vec![0.0f32; truth.len()];
    model.predict_f64(&inputs, &mut learned)?;
    Ok((protocol::score(&learned, &truth), learned, truth))
}

fn picture(values: &[f32], size: (usize, usize), colormap: Colormap) -> RgbImage {
    RgbImage::from_fn(size.0 as u32, size.1 as u32, |x, y| {
        image::Rgb(colormap.map(values[y as usize * size.0 + x as usize]))
    })
}

/// Largest error drawn at full brightness: a fixed scale, so error maps of different entries compare.
const ERROR_SCALE: f64 = 0.25;

fn error_picture(learned: &[f32], truth: &[f64], size: (usize, usize)) -> RgbImage {
    let colormap = Colormap::parse("magma").expect("a built-in colormap");
    RgbImage::from_fn(size.0 as u32, size.1 as u32, |x, y| {
        let i = y as usize * size.0 + x as usize;
        image::Rgb(colormap.map(((learned[i] as f64 - truth[i]).abs() / ERROR_SCALE) as f32))
    })
}

fn print_score(s: &ScoreFile, dir: &Path) {
    let b = s.boundary_mse.map_or("-".into(), |b| format!("{b:.3e}"));
    println!("score    {}: PSNR {:.2} dB (MSE {:.3e}, boundary MSE {b})", s.name, s.psnr, s.mse);
    for z in &s.zooms {
        println!("zoom     {:<22} width {:<8} PSNR {:>6.2} dB", z.zoom.name, z.zoom.width, z.score.psnr);
    }
    println!(
        "trained  {} steps, {} samples, {:.0} samples/s in {:.1}s on {} ({} threads)",
        s.steps, s.samples, s.samples_per_s, s.wall_s, s.machine.cpu, s.machine.threads
    );
    println!("wrote    {} (score.json, full.png, error.png, zoom-*.png)", dir.display());
}
