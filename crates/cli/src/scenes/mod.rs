//! `approxlab scenes` and `approxlab scene NAME`: the video replayed scene by scene ([`catalog`]), each scene's
//! measurements and pictures kept in `REPORT/NAME/scene.json`, and `REPORT/index.html` rebuilt from all of them
//! ([`report`]) after every scene.

pub mod catalog;
mod report;
mod terms;

use crate::compare::{self, CompareArgs, ResultRow, Table};
use crate::config::{self, RunConfig};
use crate::render::{self, RenderOptions};
use anyhow::{anyhow, bail, Context, Result};
use approxlab_data::DataSpec;
use approxlab_view::{hstack, label_panel, plot_loss_curves, write_png_atomic, LossSeries, Window};
use catalog::{Scene, SceneBudget, Work, SCENES};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct ScenesArgs {
    /// Run every scene in order and write REPORT/index.html (without it: list the scenes)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub common: SceneOptions,
}

#[derive(clap::Args, Debug)]
pub struct SceneArgs {
    /// The scene's name, as `approxlab scenes` lists them
    pub name: String,
    /// Watch it learn in the browser (scenes of a single run); the page stays up afterwards until Ctrl-C
    #[arg(long)]
    pub serve: bool,
    #[command(flatten)]
    pub listen: crate::ListenArgs,
    #[command(flatten)]
    pub common: SceneOptions,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SceneOptions {
    /// Short budgets: every scene in a few minutes on 2 cores (the full budgets reproduce the README's figures)
    #[arg(long)]
    pub quick: bool,
    /// The report's directory: index.html and one folder per scene
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// The image the image scenes learn (default: a generated test card, REPORT/assets/test-card.png)
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// The MNIST directory (the four IDX files) of the MNIST scene; skipped when absent
    #[arg(long, value_name = "DIR", default_value = "../shared/data/mnist")]
    pub mnist: PathBuf,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Keep the runs' checkpoints (to render, zoom or resume them later); by default they are removed once the
    /// scene is measured, as the page does not need them
    #[arg(long)]
    pub keep_checkpoints: bool,
    #[arg(long, short)]
    pub quiet: bool,
}

/// What one scene measured and where its pictures are, kept as `REPORT/NAME/scene.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SceneResult {
    pub name: String,
    pub quick: bool,
    pub budget: String,
    pub date: String,
    pub machine: String,
    /// Seconds the whole scene took: training, pictures and videos.
    pub wall_s: f64,
    pub command: String,
    /// The scene's result in one line.
    pub headline: String,
    pub tables: Vec<SceneTable>,
    pub media: Vec<Media>,
    pub notes: Vec<String>,
    /// Why the scene did not run (its data is missing), when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SceneTable {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl From<Table> for SceneTable {
    fn from(t: Table) -> SceneTable {
        SceneTable { caption: String::new(), columns: t.columns, rows: t.rows }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

/// A picture or video of the scene, its path relative to the scene's folder.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Media {
    pub kind: MediaKind,
    pub src: String,
    pub caption: String,
}

impl Media {
    fn image(src: impl Into<String>, caption: impl Into<String>) -> Media {
        Media { kind: MediaKind::Image, src: src.into(), caption: caption.into() }
    }

    fn video(src: impl Into<String>, caption: impl Into<String>) -> Media {
        Media { kind: MediaKind::Video, src: src.into(), caption: caption.into() }
    }
}

/// `approxlab scenes`: the list, or with `--all` every scene and the report.
pub fn scenes(args: &ScenesArgs) -> Result<u8> {
    if !args.all {
        print_list();
        return Ok(0);
    }
    let opts = &args.common;
    let total: u32 = SCENES.iter().map(|s| s.expected_s(opts.quick)).sum();
    eprintln!(
        "scenes   {} scenes{}, about {} min on 2 cores; report in {}",
        SCENES.len(),
        if opts.quick { " (quick)" } else { "" },
        total.div_ceil(60),
        opts.out.display()
    );
    let started = Instant::now();
    let mut left = total;
    for (k, scene) in SCENES.iter().enumerate() {
        let expected = scene.expected_s(opts.quick);
        eprintln!(
            "scene    {}/{}: {} ({}) · about {expected} s, {} min left in all",
            k + 1,
            SCENES.len(),
            scene.name,
            scene.title,
            left.div_ceil(60)
        );
        left = left.saturating_sub(expected);
        let code = run_and_record(scene, opts, false)?;
        if code != 0 {
            return Ok(code);
        }
    }
    let index = report::write(&opts.out)?;
    println!("report   {} ({} scenes in {:.0}s)", index.display(), SCENES.len(), started.elapsed().as_secs_f64());
    Ok(0)
}

/// `approxlab scene NAME`: one scene, then the report rebuilt with it.
pub fn scene(args: &SceneArgs) -> Result<u8> {
    let Some(scene) = catalog::find(&args.name) else {
        let names: Vec<&str> = SCENES.iter().map(|s| s.name).collect();
        bail!("scene '{}': no such scene; expected one of {}", args.name, names.join(", "));
    };
    if args.serve && !matches!(scene.work, Work::Train { .. }) {
        bail!(
            "scene {} --serve: only scenes of a single run are served; this one trains {}; run it without --serve and \
             open its report",
            scene.name,
            match scene.work {
                Work::Compare { .. } => "a comparison",
                _ => "no network of its own",
            }
        );
    }
    if scene.needs_mnist() && !mnist_present(&args.common.mnist) {
        bail!("{}", mnist_missing(&args.common.mnist));
    }
    let code = if args.serve { run_served(scene, args)? } else { run_and_record(scene, &args.common, true)? };
    if code == 0 {
        let index = report::write(&args.common.out)?;
        println!("report   {}", index.display());
    }
    Ok(code)
}

fn print_list() {
    println!("{:<20} {:>7} {:>7}  what it shows", "scene", "quick", "full");
    for s in SCENES {
        let time = |secs: u32| if secs < 90 { format!("{secs}s") } else { format!("{}m", secs.div_ceil(60)) };
        println!("{:<20} {:>7} {:>7}  {}", s.name, time(s.quick_s), time(s.full_s), s.title);
    }
    println!();
    println!(
        "approxlab scene NAME [--quick] [--serve]   runs one scene into report/NAME/ and updates report/index.html"
    );
    println!("approxlab scenes --all [--quick]           runs every scene and writes report/index.html");
    println!(
        "(times: measured on 2 cores, AMD EPYC Zen 4; image scenes learn a generated test card unless --image PATH)"
    );
}

fn mnist_present(dir: &Path) -> bool {
    approxlab_data::MNIST_FILES.iter().all(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file())
}

fn mnist_missing(dir: &Path) -> String {
    format!(
        "--mnist {}: the MNIST files are not there ({}, plain or .gz); pass --mnist DIR",
        dir.display(),
        approxlab_data::MNIST_FILES.join(", ")
    )
}

/// A scene's folder while it runs: the previous result waits in `REPORT/.NAME.previous/` and comes back unless the
/// new one completes, so an interrupted or failed scene keeps what it had and the report never shows half a scene.
struct SceneDir {
    dir: PathBuf,
    previous: PathBuf,
    done: bool,
}

impl SceneDir {
    fn begin(out: &Path, name: &str) -> Result<SceneDir> {
        let dir = out.join(name);
        let previous = out.join(format!(".{name}.previous"));
        let cannot = |what: &str, p: &Path| format!("{}: cannot {what}", p.display());
        if previous.exists() {
            // Left by a process that was killed: the previous result is the one to keep.
            if dir.exists() {
                std::fs::remove_dir_all(&dir).with_context(|| cannot("remove", &dir))?;
            }
            std::fs::rename(&previous, &dir).with_context(|| cannot("restore", &previous))?;
        }
        if dir.exists() {
            std::fs::rename(&dir, &previous).with_context(|| cannot("move aside", &dir))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| cannot("create", &dir))?;
        Ok(SceneDir { dir, previous, done: false })
    }

    /// Writes `scene.json` and drops the previous result (and the runs' checkpoints unless `keep_checkpoints`).
    fn commit(mut self, result: &SceneResult, keep_checkpoints: bool) -> Result<()> {
        if !keep_checkpoints {
            remove_checkpoints(&self.dir)?;
        }
        let text = serde_json::to_string_pretty(result)?;
        approxlab_engine::checkpoint::atomic_write(&self.dir.join("scene.json"), text.as_bytes())?;
        self.done = true;
        if self.previous.exists() {
            std::fs::remove_dir_all(&self.previous)
                .with_context(|| format!("{}: cannot remove", self.previous.display()))?;
        }
        Ok(())
    }
}

impl Drop for SceneDir {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.previous.exists() {
            let _ = std::fs::rename(&self.previous, &self.dir);
        }
    }
}

/// Removes every run's `checkpoints/` folder under `dir` (a scene holds runs at depth 1 or 2).
fn remove_checkpoints(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "checkpoints") {
            std::fs::remove_dir_all(&path).with_context(|| format!("{}: cannot remove", path.display()))?;
        } else {
            remove_checkpoints(&path)?;
        }
    }
    Ok(())
}

fn announce(result: &SceneResult) {
    println!("scene    {}: {} ({:.0}s)", result.name, result.headline, result.wall_s);
}

/// Runs `scene` into `REPORT/NAME/`. Returns the exit code (non-zero: stop).
fn run_and_record(scene: &Scene, opts: &SceneOptions, alone: bool) -> Result<u8> {
    let folder = SceneDir::begin(&opts.out, scene.name)?;
    let started = Instant::now();
    let mut ctx = Ctx { scene, opts, dir: folder.dir.clone() };
    let outcome = if scene.needs_mnist() && !mnist_present(&opts.mnist) {
        let reason = mnist_missing(&opts.mnist);
        eprintln!("skipped  {}: {reason}", scene.name);
        Ok(Some(ctx.skipped(reason)))
    } else {
        ctx.run()
    };
    let result = match outcome {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(crate::run::interrupted_exit_code()),
        Err(e) if crate::run::INTERRUPTED.load(Ordering::SeqCst) => {
            eprintln!("approxlab: scene {} interrupted: {e:#}", scene.name);
            return Ok(crate::run::interrupted_exit_code());
        }
        Err(e) => return Err(e.context(format!("scene {}", scene.name))),
    };
    let result = SceneResult { wall_s: started.elapsed().as_secs_f64(), ..result };
    folder.commit(&result, opts.keep_checkpoints)?;
    if alone || !opts.quiet {
        announce(&result);
    }
    Ok(0)
}

/// `scene NAME --serve`: the scene's run on the live view, recorded (and the report rebuilt) as soon as it ends,
/// while the page stays up.
fn run_served(scene: &Scene, args: &SceneArgs) -> Result<u8> {
    let opts = &args.common;
    crate::run::init_threads(opts.threads)?;
    let folder = std::cell::RefCell::new(Some(SceneDir::begin(&opts.out, scene.name)?));
    let dir = folder.borrow().as_ref().expect("just begun").dir.clone();
    let ctx = Ctx { scene, opts, dir };
    let Work::Train { model, zoom } = scene.work else { unreachable!("checked by the caller") };
    let config = ctx.single_config(model)?;
    let started = Instant::now();
    let after = |run_dir: &Path| -> Result<()> {
        let summary = crate::summary::Summary::read(run_dir)?;
        let result = ctx.measure_run(model, zoom, run_dir, &config, &summary)?;
        let result = SceneResult { wall_s: started.elapsed().as_secs_f64(), ..result };
        if let Some(f) = folder.borrow_mut().take() {
            f.commit(&result, opts.keep_checkpoints)?;
        }
        announce(&result);
        println!("report   {}", report::write(&opts.out)?.display());
        Ok(())
    };
    let (_, code) = crate::commands::train_served(config.clone(), opts.quiet, &args.listen, Some(&after))?;
    Ok(code)
}

/// The scenes the live page offers as presets: those that train (a run or a comparison), MNIST's only where
/// `mnist` holds the files.
pub fn live_presets(mnist: Option<&Path>) -> Vec<&'static Scene> {
    SCENES
        .iter()
        .filter(|s| matches!(s.work, Work::Train { .. } | Work::Compare { .. }))
        .filter(|s| !s.needs_mnist() || mnist.is_some_and(mnist_present))
        .collect()
}

/// The preset `name`, or a one-line error listing the presets.
pub fn live_preset(name: &str, mnist: Option<&Path>) -> Result<&'static Scene> {
    let presets = live_presets(mnist);
    presets.iter().find(|s| s.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = presets.iter().map(|s| s.name).collect();
        anyhow!("scene '{name}': not a preset of the page; expected one of {}", names.join(", "))
    })
}

/// The run configs of a scene for the live page, exactly as `approxlab scene NAME [--quick]` trains them
/// (comparisons sized to the same parameter count, on the first model's data), labelled by model. Image scenes
/// learn the generated test card, written to `out/assets/`.
pub fn live_configs(name: &str, quick: bool, out: &Path, mnist: Option<&Path>) -> Result<Vec<(String, RunConfig)>> {
    let scene = live_preset(name, mnist)?;
    let opts = SceneOptions {
        quick,
        out: out.to_path_buf(),
        image: None,
        mnist: mnist.map(Path::to_path_buf).unwrap_or_default(),
        seed: None,
        threads: 0,
        keep_checkpoints: true,
        quiet: true,
    };
    let ctx = Ctx { scene, opts: &opts, dir: out.to_path_buf() };
    let (models, match_params) = match scene.work {
        Work::Train { model, .. } => (vec![model], None),
        Work::Compare { models, match_params } => (models.to_vec(), match_params),
        Work::TermCounts | Work::Challenge => unreachable!("not a preset"),
    };
    let mut configs: Vec<(String, RunConfig)> = Vec::new();
    for model in models {
        let mut c = ctx.config(model, out, model.0)?;
        if let Some((_, first)) = configs.first() {
            c.data = first.data.clone();
        }
        configs.push((model.0.to_string(), c));
    }
    if let Some(target) = match_params {
        let data = crate::run::build_dataset(&configs[0].1)?;
        for (_, c) in configs.iter_mut() {
            *c = compare::match_width(c, data.as_ref(), target)?;
        }
    }
    Ok(configs)
}

struct Ctx<'a> {
    scene: &'a Scene,
    opts: &'a SceneOptions,
    /// The scene's folder, `REPORT/NAME`.
    dir: PathBuf,
}

impl Ctx<'_> {
    fn base(&self, headline: String) -> SceneResult {
        let quick = if self.opts.quick { " --quick" } else { "" };
        SceneResult {
            name: self.scene.name.to_string(),
            quick: self.opts.quick,
            budget: self.scene.budget(self.opts.quick).describe(self.scene.models().len()),
            date: chrono::Local::now().format("%Y-%m-%d %H:%M").to_string(),
            machine: format!("{}, {} threads", crate::challenge::cpu_model(), rayon::current_num_threads()),
            wall_s: 0.0,
            command: format!("approxlab scene {}{quick}", self.scene.name),
            headline,
            tables: vec![],
            media: vec![],
            notes: vec![],
            skipped: None,
        }
    }

    fn skipped(&self, reason: String) -> SceneResult {
        SceneResult { skipped: Some(reason), ..self.base("skipped".into()) }
    }

    /// The scene's result, or `None` when a signal stopped it.
    fn run(&mut self) -> Result<Option<SceneResult>> {
        crate::run::init_threads(self.opts.threads)?;
        match self.scene.work {
            Work::Train { model, zoom } => self.train(model, zoom),
            Work::Compare { models, match_params } => self.compare(models, match_params),
            Work::TermCounts => terms::scene(self).map(Some),
            Work::Challenge => self.challenge(),
        }
    }

    /// The image the image scenes learn: `--image`, or the generated test card.
    fn image(&self) -> Result<PathBuf> {
        if let Some(path) = &self.opts.image {
            if !path.is_file() {
                bail!("--image {}: no such file", path.display());
            }
            return Ok(path.clone());
        }
        let path = self.opts.out.join("assets").join("test-card.png");
        if !path.is_file() {
            let assets = self.opts.out.join("assets");
            std::fs::create_dir_all(&assets).with_context(|| format!("{}: cannot create", assets.display()))?;
            let card = approxlab_view::test_card(128, 128).map_err(|e| anyhow!("{e}"))?;
            write_png_atomic(&path, &card).map_err(|e| anyhow!("{e}"))?;
        }
        Ok(path)
    }

    /// A model's config with the scene's data, budget and folder: `dir/name`.
    fn config(&self, (label, text): catalog::Model, dir: &Path, name: &str) -> Result<RunConfig> {
        let flags = config::ConfigFlags {
            out: Some(dir.to_path_buf()),
            name: Some(name.to_string()),
            seed: self.opts.seed,
            threads: Some(self.opts.threads),
            ..Default::default()
        };
        let mut c = config::resolve_text(text, &format!("the {} scene's {label} config", self.scene.name), &flags)?;
        match &mut c.data {
            DataSpec::Image(spec) => spec.path = self.image()?,
            DataSpec::Mnist(spec) => spec.dir = self.opts.mnist.clone(),
            _ => {}
        }
        let budget = self.scene.budget(self.opts.quick);
        scale_schedule(&mut c, budget);
        c.budget = match budget {
            SceneBudget::Steps(n) => config::Budget { steps: Some(n), ..Default::default() },
            SceneBudget::Time(t) => config::Budget { time: Some(t.to_string()), ..Default::default() },
            SceneBudget::None => bail!("the {} scene trains nothing", self.scene.name),
        };
        // One checkpoint (the latest) is enough to render, zoom or resume a scene's run.
        c.output.checkpoint_every = 0;
        Ok(c)
    }

    fn single_config(&self, model: catalog::Model) -> Result<RunConfig> {
        let dir = self.dir.clone();
        let mut c = self.config(model, &dir, "run")?;
        c.output.frame_every = 0;
        c.output.frame_seconds = 0.0;
        c.output.frames = if matches!(c.data, DataSpec::Mnist(_)) { 0 } else { 60 };
        config::validate(&c)?;
        Ok(c)
    }

    fn train(&mut self, model: catalog::Model, zoom: Option<[f64; 4]>) -> Result<Option<SceneResult>> {
        let config = self.single_config(model)?;
        let (run_dir, code, summary) = crate::commands::train_summarised(config.clone(), self.opts.quiet)?;
        if code != 0 {
            if crate::run::INTERRUPTED.load(Ordering::SeqCst) {
                return Ok(None);
            }
            bail!("its run stopped early (exit {code}); see {}", run_dir.display());
        }
        self.measure_run(model, zoom, &run_dir, &config, &summary).map(Some)
    }

    /// The result of a finished single run: its table, pictures, video and loss plot.
    fn measure_run(
        &self,
        model: catalog::Model,
        zoom: Option<[f64; 4]>,
        run_dir: &Path,
        config: &RunConfig,
        summary: &crate::summary::Summary,
    ) -> Result<SceneResult> {
        let row = ResultRow::of_run(model.0, run_dir, summary);
        let mut result = self.base(headline(std::slice::from_ref(&row)));
        result.tables.push(compare::results_table(std::slice::from_ref(&row)).into());
        for (file, caption) in [
            ("compare.png", "learned (left) and truth (right) at the end"),
            ("learned.png", "the learned function at the end (the truth drawn under it)"),
            ("classification.png", "test digits and their predicted labels"),
        ] {
            if run_dir.join(file).exists() {
                result.media.push(Media::image(format!("run/{file}"), caption));
                break;
            }
        }
        if run_dir.join("frames").is_dir() {
            let video = crate::media::encode_run_frames_at(run_dir, 15, self.opts.quiet)?;
            result.media.push(Media::video("run/video.mp4", format!("learning, {} frames", video.frames)));
        }
        let points = compare::read_losses(&run_dir.join("metrics.jsonl"), false)?;
        let plot = plot_loss_curves(&[LossSeries { label: model.0.into(), points }], "step", 900, 480)
            .map_err(|e| anyhow!("{e}"))?;
        write_png_atomic(self.dir.join("loss.png"), &plot).map_err(|e| anyhow!("{e}"))?;
        result.media.push(Media::image("loss.png", "training loss"));
        if let Some(window) = zoom {
            self.zoom_picture(run_dir, config, window)?;
            result.media.push(Media::image(
                "zoom.png",
                format!(
                    "zoomed into [{}, {}] x [{}, {}]: learned (left) and truth (right)",
                    window[0], window[1], window[2], window[3]
                ),
            ));
        }
        Ok(result)
    }

    /// Learned and truth side by side over `window`, where the detail the network has not learned shows.
    fn zoom_picture(&self, run_dir: &Path, config: &RunConfig, window: [f64; 4]) -> Result<()> {
        let (_, data, trainer, _) = crate::run::load_run(run_dir)?;
        let window = Window::new(window[0], window[1], window[2], window[3]).map_err(|e| anyhow!("{e}"))?;
        let colormap = approxlab_view::Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
        let opts = RenderOptions { size: Some((480, 480)), window: Some(window), colormap, ..Default::default() };
        let f = crate::run::model_fn(trainer.model());
        let learned = render::render(data.as_ref(), &f, &opts)?;
        let truth_fn = |x: &[f32], out: &mut [f32]| {
            data.truth(x, out);
        };
        let truth = render::render(data.as_ref(), &truth_fn, &opts)?;
        let l = label_panel(&learned, "learned").map_err(|e| anyhow!("{e}"))?;
        let t = label_panel(&truth, "truth").map_err(|e| anyhow!("{e}"))?;
        write_png_atomic(self.dir.join("zoom.png"), &hstack(&[&l, &t], 8)).map_err(|e| anyhow!("{e}"))
    }

    fn compare(&mut self, models: &[catalog::Model], match_params: Option<usize>) -> Result<Option<SceneResult>> {
        let budget = self.scene.budget(self.opts.quick);
        let args = CompareArgs {
            configs: vec![],
            time: match budget {
                SceneBudget::Time(t) => Some(t.to_string()),
                _ => None,
            },
            steps: match budget {
                SceneBudget::Steps(n) => Some(n),
                _ => None,
            },
            match_params,
            data: None,
            set: vec![],
            seed: self.opts.seed,
            threads: Some(self.opts.threads),
            out: self.opts.out.clone(),
            name: None,
            frames: 40,
            fps: 12,
            format: "mp4".into(),
            quiet: self.opts.quiet,
        };
        let dir = self.dir.clone();
        let mut resolved = Vec::new();
        let mut data = None;
        for &model in models {
            let mut c = self.config(model, &dir, model.0)?;
            // Every model learns the first one's data, as `compare` does.
            let first = data.get_or_insert_with(|| c.data.clone());
            c.data = first.clone();
            resolved.push((model.0.to_string(), c));
        }
        let outcome = compare::compare_models(&args, &dir, resolved);
        if crate::run::INTERRUPTED.load(Ordering::SeqCst) {
            return Ok(None);
        }
        outcome?;
        let rows: Vec<ResultRow> = serde_json::from_slice(&std::fs::read(dir.join("results.json"))?)
            .context("results.json of the comparison")?;
        let mut result = self.base(headline(&rows));
        let mut table: SceneTable = compare::results_table(&rows).into();
        if let Some(n) = match_params {
            table.caption = format!("every network sized to about {n} parameters");
        }
        result.tables.push(table);
        if dir.join("grid.mp4").exists() {
            result.media.push(Media::video("grid.mp4", "the models learning, side by side at the same moment"));
        }
        for row in &rows {
            for (file, caption) in [
                ("compare.png", "learned (left) and truth (right)"),
                ("learned.png", "learned, the truth drawn under it"),
                ("classification.png", "test digits and their predicted labels"),
            ] {
                if dir.join(&row.model).join(file).exists() {
                    result
                        .media
                        .push(Media::image(format!("{}/{file}", row.model), format!("{}: {caption}", row.model)));
                    break;
                }
            }
        }
        result.media.push(Media::image("loss.png", "training loss of every model"));
        Ok(Some(result))
    }

    fn challenge(&mut self) -> Result<Option<SceneResult>> {
        let budget = match self.scene.budget(self.opts.quick) {
            SceneBudget::Time(t) => t,
            _ => bail!("the challenge scene needs a time budget"),
        };
        let out = self.dir.display().to_string();
        let mut argv = vec!["challenge", "--time", budget, "--out", &out, "--name", "run", "--set", "output.frames=30"];
        if self.opts.quick {
            // Quarter-size grids: the score is then an estimate, not a leaderboard figure.
            argv.extend(["--grid", "960x606", "--zoom-grid", "480x270"]);
        }
        if self.opts.quiet {
            argv.push("-q");
        }
        let seed = self.opts.seed.map(|s| s.to_string());
        if let Some(seed) = &seed {
            argv.extend(["--seed", seed]);
        }
        #[derive(Parser)]
        struct Challenge {
            #[command(flatten)]
            args: crate::challenge::ChallengeArgs,
        }
        let parsed = Challenge::try_parse_from(argv).map_err(|e| anyhow!("{e}"))?;
        let code = crate::challenge::run(&parsed.args)?;
        if code != 0 {
            if crate::run::INTERRUPTED.load(Ordering::SeqCst) {
                return Ok(None);
            }
            bail!("the champion stopped early (exit {code})");
        }
        let run_dir = self.dir.join("run");
        let score: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("score.json"))?)?;
        let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        let mut result = self.base(format!("champion: PSNR {:.2} dB", num(&score["psnr"])));
        let mut columns = vec!["entry".to_string(), "PSNR dB".into(), "boundary MSE".into()];
        let mut cells = vec![
            "champion".to_string(),
            format!("{:.2}", num(&score["psnr"])),
            format!("{:.3e}", num(&score["boundary_mse"])),
        ];
        let zooms = score["zooms"].as_array().cloned().unwrap_or_default();
        for z in &zooms {
            columns.push(format!("{} (width {}) dB", z["name"].as_str().unwrap_or("?"), z["width"]));
            cells.push(format!("{:.2}", num(&z["psnr"])));
        }
        columns.extend(["steps".into(), "samples/s".into()]);
        cells.extend([score["steps"].to_string(), format!("{:.0}", num(&score["samples_per_s"]))]);
        result.tables.push(SceneTable {
            caption: "full window, then the public zoom windows".into(),
            columns,
            rows: vec![cells],
        });
        if !self.opts.quick {
            result.notes.push("Protocol grids: comparable with docs/leaderboard.md.".into());
        } else {
            result.notes.push(
                "Quick: 30 s of training and quarter-size score grids, so the figure is an estimate below the \
                 300-s protocol score; `approxlab scene challenge` runs the protocol."
                    .into(),
            );
        }
        result.media.push(Media::image("run/full.png", "the learned set over the whole window"));
        result.media.push(Media::image("run/error.png", "its error (brighter: larger)"));
        for z in &zooms {
            let name = z["name"].as_str().unwrap_or("?");
            result.media.push(Media::image(
                format!("run/zoom-{name}.png"),
                format!("{name}, width {}: learned | truth | error", z["width"]),
            ));
        }
        if run_dir.join("frames").is_dir() {
            let video = crate::media::encode_run_frames_at(&run_dir, 10, self.opts.quiet)?;
            result.media.push(Media::video("run/video.mp4", format!("learning, {} frames", video.frames)));
        }
        Ok(Some(result))
    }
}

/// A step schedule written for the example's own step budget, compressed or stretched to the scene's, so that a
/// quick run still lowers its learning rate as often.
fn scale_schedule(c: &mut RunConfig, budget: SceneBudget) {
    let (Some(own), SceneBudget::Steps(n)) = (c.budget.steps, budget) else { return };
    if let approxlab_engine::schedule::Schedule::Step { every, .. } = &mut c.train.schedule {
        *every = ((*every as f64 * n as f64 / own as f64).round() as u64).max(1);
    }
}

/// The figure that sums up the rows: accuracy for classification, PSNR where the data has it, else the eval MSE.
fn headline(rows: &[ResultRow]) -> String {
    let part = |r: &ResultRow| {
        if let Some(a) = r.test_accuracy {
            format!("{} {:.2} % test accuracy", r.model, 100.0 * a)
        } else if let Some(p) = r.psnr {
            format!("{} {p:.2} dB", r.model)
        } else {
            format!("{} eval MSE {:.3e}", r.model, r.eval_mse)
        }
    };
    rows.iter().map(part).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's presets are the scenes that train, and each resolves to the configs `approxlab scene` trains:
    /// one per model, on the first model's data, comparisons sized alike.
    #[test]
    fn live_presets_resolve_to_the_scenes_own_configs() {
        let out = tempfile::tempdir().unwrap();
        let presets = live_presets(None);
        assert!(presets.iter().all(|s| !s.needs_mnist()), "MNIST only with its files");
        assert!(!presets.iter().any(|s| s.name == "curse" || s.name == "challenge"), "they train nothing live");
        for scene in presets {
            let configs = live_configs(scene.name, true, out.path(), None).unwrap();
            assert_eq!(configs.len(), scene.models().len(), "{}", scene.name);
            let SceneBudget::Steps(steps) = scene.quick else { continue };
            for (label, c) in &configs {
                assert_eq!(c.budget.steps, Some(steps), "{} {label}", scene.name);
                assert_eq!(c.data, configs[0].1.data, "{} {label}: the first model's data", scene.name);
            }
        }
        let sized = live_configs("image-features", true, out.path(), None).unwrap();
        let params: Vec<usize> = sized
            .iter()
            .map(|(_, c)| {
                let data = crate::run::build_dataset(c).unwrap();
                approxlab_engine::Model::new(c.model.clone(), data.domain(), data.output_dims(), 0).unwrap().n_params()
            })
            .collect();
        let (lo, hi) = (params.iter().min().unwrap(), params.iter().max().unwrap());
        assert!((*hi as f64) < 1.25 * *lo as f64, "equal size: {params:?}");
        let e = live_configs("curse", true, out.path(), None).unwrap_err().to_string();
        assert!(e.contains("not a preset") && e.contains("image-features"), "{e}");
    }
}
