//! `approxlab`: watch neural networks learn. A thin command line over the engine, data and view crates.

mod bench;
mod challenge;
mod compare;
mod config;
mod controls;
mod live;
mod media;
mod parts;
mod progress;
mod queue;
mod render;
mod run;
mod run_loop;
mod samplers;
mod scenes;
mod sinks;
mod summary;

use anyhow::{anyhow, Context, Result};
use approxlab_data::DataSpec;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_view::{write_png_atomic, Colormap, Window};
use clap::{Parser, Subcommand};
use config::{ConfigFlags, RunConfig};
use render::RenderOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "approxlab", version, about = "Watch neural networks learn: curves, images, surfaces, fractals")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Largest memory a model, a batch or a render may need, e.g. 8G (default: 3/4 of the machine's memory); larger
    /// ones are refused before anything is allocated
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model; writes a run directory (config, metrics, checkpoints, frames, summary, renders)
    Train {
        #[command(flatten)]
        flags: Box<ConfigFlags>,
        /// Print the effective config as TOML and exit
        #[arg(long)]
        print_config: bool,
        /// No progress bar, only the final lines
        #[arg(long, short)]
        quiet: bool,
        /// After training, encode the frames as RUN/video.mp4 (needs --frame-every or --frame-seconds)
        #[arg(long)]
        video: bool,
        /// Watch the run live in the browser; the page stays up after training until Ctrl-C
        #[arg(long)]
        serve: bool,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Start the live view in the browser: start, watch, steer, zoom into and compare runs
    Serve {
        #[command(flatten)]
        listen: ListenArgs,
        /// Open the page in the default browser
        #[arg(long)]
        open: bool,
        /// Parent directory of the runs started from the page
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// A folder whose images/ (PNG, JPEG) and mnist/ the page may train on, e.g. ../shared/data
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Training threads (0: one per core)
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Runs from the page that train at once; later ones wait in order (default: one per two cores)
        #[arg(long, value_name = "N")]
        max_runs: Option<usize>,
    },
    /// Continue a run from its latest checkpoint
    Resume {
        run: PathBuf,
        /// New total step budget
        #[arg(long)]
        steps: Option<u64>,
        /// New wall-clock budget for this session, e.g. 60s
        #[arg(long, value_name = "DURATION")]
        time: Option<String>,
        /// Continue in another precision: auto | f32 | bf16 (checkpoints are f32 either way)
        #[arg(long)]
        precision: Option<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Evaluate a run's latest checkpoint on its data set's evaluation set
    Eval { run: PathBuf },
    /// Render a run's learned function to a PNG
    Render {
        run: PathBuf,
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Render a data set's ground truth to a PNG
    Truth {
        /// Data set, as for `train --data`
        data: String,
        #[command(flatten)]
        view: ViewArgs,
        /// Set a data key, e.g. --set depth=500
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// The Mandelbrot challenge: train an entry (default: the champion) for 300 s under the protocol, score it on
    /// the full grid and deep zoom windows, and optionally record it on the leaderboard
    Challenge(Box<challenge::ChallengeArgs>),
    /// Train a Fourier-feature network on the Mandelbrot set in about a minute and show where to look
    Demo {
        /// Parent directory of the run
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        #[arg(long, short)]
        quiet: bool,
        /// Watch it learn in the browser; the page stays up after training until Ctrl-C
        #[arg(long)]
        serve: bool,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Encode a run's frames as an MP4 or GIF, and render its final frame at high resolution
    Video(media::VideoArgs),
    /// Zoom smoothly into a run's learned 2-D function beside the truth, as a video
    Zoom(media::ZoomArgs),
    /// Train several models on the same data with the same budget; grid video, loss plot, results table
    Compare(compare::CompareArgs),
    /// Measure training steps per second on the reference workloads
    Bench(bench::BenchArgs),
    /// The scenes of the video "Watching Neural Networks Learn": list them, or run them all (--all) into a
    /// results page, report/index.html
    Scenes(scenes::ScenesArgs),
    /// Run one scene of the video (a run or a comparison) into report/NAME/ and update report/index.html
    Scene(Box<scenes::SceneArgs>),
    /// List the choices of every part of a run: data, encodings, networks, activations, heads, losses, optimizers,
    /// schedules, samplers, precisions
    Parts {
        /// As the README's Markdown table
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(clap::Args, Debug, Clone)]
struct ListenArgs {
    /// Port of the live view (0: any free port)
    #[arg(long, default_value_t = 8642)]
    port: u16,
    /// Address to listen on; anything but loopback exposes the page and its runs to the network
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
}

impl ListenArgs {
    fn addr(&self) -> std::net::SocketAddr {
        if !self.host.is_loopback() {
            eprintln!(
                "approxlab: warning: --host {} exposes the live view to the network; anyone who reaches it can \
                 start runs and upload images",
                self.host
            );
        }
        std::net::SocketAddr::new(self.host, self.port)
    }
}

#[derive(clap::Args, Debug)]
struct ViewArgs {
    /// Image size WxH (default: the data set's own, or 800 wide)
    #[arg(long, value_name = "WxH")]
    size: Option<String>,
    /// Window X0,X1,Y0,Y1 of a 2-D scalar function (default: the data domain)
    #[arg(long, value_name = "X0,X1,Y0,Y1", allow_hyphen_values = true)]
    window: Option<String>,
    /// inferno, magma, viridis, plasma, gray, bone, gist_heat
    #[arg(long, default_value = "inferno")]
    colormap: String,
    /// Output PNG file
    #[arg(long, short)]
    out: PathBuf,
}

impl ViewArgs {
    fn options(&self) -> Result<RenderOptions> {
        let size = self.size.as_deref().map(config::parse_size).transpose()?;
        let window =
            self.window.as_deref().map(|w| w.parse::<Window>().map_err(|e| anyhow!("--window: {e}"))).transpose()?;
        let colormap = Colormap::parse(&self.colormap).map_err(|e| anyhow!("--colormap: {e}"))?;
        Ok(RenderOptions { size, window, colormap, ..Default::default() })
    }
}

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away (`approxlab ... | head`):
    // Rust ignores SIGPIPE, which turns that into a failed print and a panic.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::panic::set_hook(Box::new(|info| {
        eprintln!("approxlab: internal error: {info}. Please report this.");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Some(size) = &cli.max_memory {
        match approxlab_engine::limits::parse_memory(size) {
            Ok(bytes) => approxlab_engine::limits::set_memory_budget(bytes),
            Err(e) => {
                eprintln!("error: --max-memory {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = approxlab_engine::openblas::check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Help and version print as clap has them; a usage error is one line, like every other error, with clap's tip
/// (e.g. how to pass a negative number) kept and the usage summary left to `--help`.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: bad arguments").to_string();
    let tips: Vec<&str> = lines.filter(|l| l.starts_with("tip:")).collect();
    let mut line = first;
    for tip in tips {
        line += &format!("; {tip}");
    }
    eprintln!("{line} (approxlab --help lists the options)");
    ExitCode::from(2)
}

fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Serve { listen, open, out, data_dir, threads, max_runs } => {
            if max_runs == Some(0) {
                anyhow::bail!("--max-runs: must be at least 1, got 0");
            }
            run::init_threads(threads)?;
            if let Some(d) = &data_dir {
                if !d.is_dir() {
                    anyhow::bail!("--data-dir {}: no such directory", d.display());
                }
            }
            let limit = max_runs.unwrap_or_else(queue::RunQueue::default_limit);
            let lab = Arc::new(live::CliLab::new(out, data_dir, limit));
            let state = approxlab_serve::AppState::new(lab.clone(), lab.upload_dir.clone());
            live::load_existing_runs(&lab.out, state.clone());
            run::install_ctrlc();
            live::serve(lab, state, listen.addr(), open)
        }
        Command::Train { flags, print_config, quiet, video, serve, listen } => {
            let mut config = config::resolve(&flags)?;
            if video && !config.output.frames_enabled() {
                // About 60 frames over the budget, denser at the start.
                config.output.frames = 60;
            }
            if print_config {
                print!("{}", config::to_toml(&config));
                return Ok(0);
            }
            let encode = |dir: &Path| -> Result<()> {
                let v = media::encode_run_frames(dir, quiet)?;
                println!("video    {} ({} frames, {:.1}s)", v.path.display(), v.frames, v.duration_s);
                Ok(())
            };
            if serve {
                return Ok(train_served(config, quiet, &listen, video.then_some(&encode as &AfterTraining))?.1);
            }
            let (dir, code) = train(config, quiet)?;
            if video && code != 1 {
                encode(&dir)?;
            }
            Ok(code)
        }
        Command::Video(args) => {
            let v = media::video(&args)?;
            println!(
                "wrote {} ({} frames, {:.1}s) and {}",
                v.path.display(),
                v.frames,
                v.duration_s,
                args.run.join("final.png").display()
            );
            Ok(0)
        }
        Command::Zoom(args) => {
            let v = media::zoom(&args)?;
            println!("wrote {} ({} frames, {:.1}s)", v.path.display(), v.frames, v.duration_s);
            Ok(0)
        }
        Command::Compare(args) => {
            let dir = compare::compare(&args)?;
            println!("{}", std::fs::read_to_string(dir.join("results.md")).unwrap_or_default());
            println!("look at  {}", dir.join("loss.png").display());
            for f in ["grid.mp4", "grid.gif", "grid.png"] {
                if dir.join(f).exists() {
                    println!("look at  {}", dir.join(f).display());
                }
            }
            Ok(0)
        }
        Command::Resume { run, steps, time, precision, quiet } => resume(&run, steps, time, precision, quiet),
        Command::Eval { run } => eval(&run),
        Command::Render { run, view } => {
            let opts = view.options()?;
            let (config, data, trainer, _) = run::load_run(&run)?;
            run::init_threads(config.threads)?;
            let f = run::model_fn(trainer.model());
            let spinner = progress::spinner(&format!("rendering {}", view.out.display()), false);
            let img = render::render(data.as_ref(), &f, &opts)?;
            spinner.finish_and_clear();
            write_png_atomic(&view.out, &img).map_err(|e| anyhow!("{e}"))?;
            println!("wrote {}", view.out.display());
            Ok(0)
        }
        Command::Truth { data, view, set } => {
            let opts = view.options()?;
            let mut table = toml::Value::try_from(DataSpec::parse(&data).map_err(|e| anyhow!("data: {e}"))?)?;
            for s in &set {
                let (k, v) = s.split_once('=').ok_or_else(|| anyhow!("--set '{s}': expected KEY=VALUE"))?;
                let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(v.to_string()));
                table.as_table_mut().expect("data specs are tables").insert(k.trim().to_string(), value);
            }
            let spec: DataSpec =
                table.try_into().map_err(|e: toml::de::Error| anyhow!("data: {}", e.message().trim()))?;
            let data = spec.build(0).map_err(|e| anyhow!("data: {e}"))?;
            let f = |x: &[f32], out: &mut [f32]| {
                if !data.truth(x, out) {
                    out.fill(f32::NAN);
                }
            };
            if !data.truth(&vec![0.0; data.input_dims()], &mut vec![0.0; data.output_dims()]) {
                anyhow::bail!("{} has no ground-truth function to render", data.name());
            }
            let img = render::render(data.as_ref(), &f, &opts)?;
            write_png_atomic(&view.out, &img).map_err(|e| anyhow!("{e}"))?;
            println!("wrote {}", view.out.display());
            Ok(0)
        }
        Command::Demo { out, quiet, serve, listen } => demo(out, quiet, serve.then_some(&listen)),
        Command::Bench(args) => bench::run(&args).map(|_| 0),
        Command::Challenge(args) => challenge::run(&args),
        Command::Scenes(args) => scenes::scenes(&args),
        Command::Scene(args) => scenes::scene(&args),
        Command::Parts { markdown } => {
            print!("{}", if markdown { parts::markdown_table() } else { parts::plain_listing() });
            Ok(0)
        }
    }
}

fn describe(config: &RunConfig, trainer: &approxlab_engine::Trainer, data: &dyn approxlab_data::Dataset) {
    let m = trainer.model();
    eprintln!("data     {} ({} inputs -> {} outputs)", data.name(), data.input_dims(), data.output_dims());
    for p in m.summary() {
        eprintln!(
            "{:<8} {:<28} {:>7} outputs {:>9} params {:>10} FLOPs/sample",
            p.part, p.description, p.outputs, p.params, p.flops_per_sample
        );
    }
    eprintln!(
        "total    {} parameters, {} encoded features, batch {}, lr {}",
        m.n_params(),
        m.encoded_dims(),
        config.train.batch,
        config.train.lr
    );
    eprintln!("products {}", trainer.precision().describe);
}

fn train(config: RunConfig, quiet: bool) -> Result<(PathBuf, u8)> {
    let (dir, code, _) = train_summarised(config, quiet)?;
    Ok((dir, code))
}

/// [`train`], also giving the run's summary.
fn train_summarised(config: RunConfig, quiet: bool) -> Result<(PathBuf, u8, summary::Summary)> {
    run::init_threads(config.threads)?;
    let (data, mut trainer, dir) = run::prepare(&config)?;
    if !quiet {
        describe(&config, &trainer, data.as_ref());
        eprintln!("run      {}", dir.display());
    }
    run::install_ctrlc();
    let outcome = run_loop::train_loop(&config, &dir, data.clone(), &mut trainer, 0.0, quiet, None)?;
    let summary = outcome.summary.clone();
    let code = finish(&dir, &config, data.as_ref(), &trainer, outcome)?;
    Ok((dir, code, summary))
}

/// What `train_served` does once training has finished (the video, say), before the page waits for Ctrl-C.
type AfterTraining<'a> = dyn Fn(&Path) -> Result<()> + 'a;

/// `train --serve`: the run as `run-1` on the live view, which stays up after training until Ctrl-C.
fn train_served(
    config: RunConfig,
    quiet: bool,
    listen: &ListenArgs,
    after: Option<&AfterTraining<'_>>,
) -> Result<(PathBuf, u8)> {
    run::init_threads(config.threads)?;
    let (data, mut trainer, dir) = run::prepare(&config)?;
    let lab = Arc::new(live::CliLab::new(config.output.dir.clone(), None, crate::queue::RunQueue::default_limit()));
    let state = approxlab_serve::AppState::new(lab.clone(), lab.upload_dir.clone());
    let request = serde_json::to_value(&config).unwrap_or(serde_json::Value::Null);
    let live_run = live::live_run("run-1", &dir, request, &config, data.clone(), trainer.model())?;
    state.add_run(live_run.clone());
    let server = approxlab_serve::Server::start(state, listen.addr())?;
    if !quiet {
        describe(&config, &trainer, data.as_ref());
        eprintln!("run      {}", dir.display());
    }
    println!("live     {}/#run=run-1", server.url());
    run::install_ctrlc();
    let outcome = run_loop::train_loop(&config, &dir, data.clone(), &mut trainer, 0.0, quiet, Some(&live_run));
    let ended = outcome.as_ref().map(|o| (o.status, o.exit_code, o.summary.clone())).map_err(|e| anyhow!("{e:#}"));
    live::finish_live(&live_run, outcome, &dir, &config, data.as_ref(), &trainer);
    let (status, exit_code, summary) = ended?;
    let code = finish(&dir, &config, data.as_ref(), &trainer, run_loop::RunOutcome { status, exit_code, summary })?;
    if let (Some(after), 0) = (after, code) {
        after(&dir)?;
    }
    if status != run_loop::RunStatus::Interrupted {
        println!("the live view stays at {} until Ctrl-C", server.url());
        while !run::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    lab.join();
    server.stop();
    Ok((dir, code))
}

fn finish(
    dir: &Path,
    config: &RunConfig,
    data: &dyn approxlab_data::Dataset,
    trainer: &approxlab_engine::Trainer,
    outcome: run_loop::RunOutcome,
) -> Result<u8> {
    use run_loop::RunStatus;
    if outcome.status == RunStatus::Diverged {
        return Ok(outcome.exit_code);
    }
    let renders = match data.kind() {
        approxlab_data::Kind::Table => vec![],
        _ => run::render_final(dir, config, data, trainer.model())?,
    };
    let s = &outcome.summary;
    let mut line = format!("{} after {} steps in {:.1}s: eval mse {:.4e}", s.status, s.steps, s.wall_s, s.eval.mse);
    if let Some(p) = s.eval.psnr {
        line += &format!(", psnr {p:.2} dB");
    }
    if let Some(a) = s.eval.accuracy {
        line += &format!(", validation accuracy {:.2}%", 100.0 * a);
    }
    if let Some(a) = s.test.as_ref().and_then(|t| t.accuracy) {
        line += &format!(", test accuracy {:.2}%", 100.0 * a);
    }
    println!("{line}");
    println!("run      {}", dir.display());
    for r in renders {
        println!("look at  {}", r.display());
    }
    if outcome.status == RunStatus::Interrupted {
        println!("resume   approxlab resume {}", dir.display());
    }
    Ok(outcome.exit_code)
}

fn resume(dir: &Path, steps: Option<u64>, time: Option<String>, precision: Option<String>, quiet: bool) -> Result<u8> {
    let precision = match precision {
        Some(p) => Some(p.parse::<PrecisionSetting>().map_err(|e| anyhow!("--precision: {e}"))?),
        None => None,
    };
    let (mut config, data, mut trainer, wall) = run::load_run(dir)?;
    if let Some(p) = precision {
        config.train.precision = p;
        trainer.set_precision(p);
        if let Some(notice) = &trainer.precision().notice {
            eprintln!("notice: {notice}");
        }
    }
    if steps.is_some() || time.is_some() || precision.is_some() {
        config.budget.steps = steps.or(config.budget.steps);
        if time.is_some() {
            config.budget.time = time;
        }
        config::validate(&config)?;
        approxlab_engine::checkpoint::atomic_write(&dir.join("config.toml"), config::to_toml(&config).as_bytes())?;
    }
    run::init_threads(config.threads)?;
    if !quiet {
        eprintln!("resuming {} at step {}", dir.display(), trainer.steps_done());
        eprintln!("products {}", trainer.precision().describe);
    }
    run::install_ctrlc();
    let outcome = run_loop::train_loop(&config, dir, data.clone(), &mut trainer, wall, quiet, None)?;
    finish(dir, &config, data.as_ref(), &trainer, outcome)
}

fn eval(dir: &Path) -> Result<u8> {
    let (config, data, trainer, _) = run::load_run(dir)?;
    run::init_threads(config.threads)?;
    let metrics = run::evaluate(trainer.model(), data.as_ref())?;
    let record = serde_json::json!({"step": trainer.steps_done(), "data": data.name(), "eval": metrics});
    let text = serde_json::to_string_pretty(&record)?;
    approxlab_engine::checkpoint::atomic_write(&dir.join("eval.json"), text.as_bytes())
        .with_context(|| format!("run {}", dir.display()))?;
    println!("{text}");
    Ok(0)
}

/// The README's first command: a Fourier-feature network learning the Mandelbrot set, with frames to watch.
fn demo(out: PathBuf, quiet: bool, serve: Option<&ListenArgs>) -> Result<u8> {
    let text = include_str!("../../../examples/demo.toml");
    let mut config = config::parse_config_text(text, "examples/demo.toml")?;
    config.output.dir = out;
    config::validate(&config)?;
    let encode = |dir: &Path| -> Result<()> {
        let v = media::encode_run_frames(dir, quiet)?;
        println!("look at  {} (the network learning, {} frames)", v.path.display(), v.frames);
        Ok(())
    };
    match serve {
        Some(listen) => Ok(train_served(config, quiet, listen, Some(&encode))?.1),
        None => {
            let (dir, code) = train(config, quiet)?;
            if code == 0 {
                encode(&dir)?;
            }
            Ok(code)
        }
    }
}
