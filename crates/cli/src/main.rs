//! `approxlab`: watch neural networks learn. A thin command line over the engine, data and view crates.

mod bench;
mod challenge;
mod commands;
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

use anyhow::{anyhow, Result};
use approxlab_view::{Colormap, Window};
use clap::{Parser, Subcommand};
use config::ConfigFlags;
use render::RenderOptions;
use std::path::PathBuf;
use std::process::ExitCode;

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
            commands::serve(&listen, open, out, data_dir, threads, max_runs)
        }
        Command::Train { flags, print_config, quiet, video, serve, listen } => {
            commands::train_command(&flags, print_config, quiet, video, serve.then_some(&listen))
        }
        Command::Video(args) => commands::video(&args),
        Command::Zoom(args) => commands::zoom(&args),
        Command::Compare(args) => commands::compare(&args),
        Command::Resume { run, steps, time, precision, quiet } => commands::resume(&run, steps, time, precision, quiet),
        Command::Eval { run } => commands::eval(&run),
        Command::Render { run, view } => commands::render(&run, &view),
        Command::Truth { data, view, set } => commands::truth(&data, &view, &set),
        Command::Demo { out, quiet, serve, listen } => commands::demo(out, quiet, serve.then_some(&listen)),
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
