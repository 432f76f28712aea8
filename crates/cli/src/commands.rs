//! The commands that train, resume, evaluate and draw runs: what `main`'s dispatch calls.

use crate::config::{self, ConfigFlags, RunConfig};
use crate::render::{self, RenderOptions};
use crate::run_loop::Session;
use crate::{compare as comparison, live, media, progress, queue, run, run_loop, summary, ListenArgs, ViewArgs};
use anyhow::{anyhow, bail, Context, Result};
use approxlab_data::DataSpec;
use approxlab_engine::precision::PrecisionSetting;
use approxlab_view::write_png_atomic;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `approxlab serve`: the live page, which starts runs on request.
pub fn serve(
    listen: &ListenArgs,
    open: bool,
    out: PathBuf,
    data_dir: Option<PathBuf>,
    threads: usize,
    max_runs: Option<usize>,
) -> Result<u8> {
    if max_runs == Some(0) {
        bail!("--max-runs: must be at least 1, got 0");
    }
    run::init_threads(threads)?;
    if let Some(d) = &data_dir {
        if !d.is_dir() {
            bail!("--data-dir {}: no such directory", d.display());
        }
    }
    let limit = max_runs.unwrap_or_else(queue::RunQueue::default_limit);
    let lab = Arc::new(live::CliLab::new(out, data_dir, limit));
    let state = approxlab_serve::AppState::new(lab.clone(), lab.upload_dir.clone());
    live::load_existing_runs(&lab.out, state.clone());
    run::install_ctrlc();
    live::serve(lab, state, listen.addr(), open)
}

/// `approxlab train`, with `--video` and `--serve`.
pub fn train_command(
    flags: &ConfigFlags,
    print_config: bool,
    quiet: bool,
    video: bool,
    serve: Option<&ListenArgs>,
) -> Result<u8> {
    let mut config = config::resolve(flags)?;
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
    if let Some(listen) = serve {
        return Ok(train_served(config, quiet, listen, video.then_some(&encode as &AfterTraining))?.1);
    }
    let (dir, code) = train(config, quiet)?;
    if video && code != 1 {
        encode(&dir)?;
    }
    Ok(code)
}

pub fn video(args: &media::VideoArgs) -> Result<u8> {
    let v = media::video(args)?;
    println!(
        "wrote {} ({} frames, {:.1}s) and {}",
        v.path.display(),
        v.frames,
        v.duration_s,
        args.run.join("final.png").display()
    );
    Ok(0)
}

pub fn zoom(args: &media::ZoomArgs) -> Result<u8> {
    let v = media::zoom(args)?;
    println!("wrote {} ({} frames, {:.1}s)", v.path.display(), v.frames, v.duration_s);
    Ok(0)
}

pub fn compare(args: &comparison::CompareArgs) -> Result<u8> {
    let dir = comparison::compare(args)?;
    println!("{}", std::fs::read_to_string(dir.join("results.md")).unwrap_or_default());
    println!("look at  {}", dir.join("loss.png").display());
    for f in ["grid.mp4", "grid.gif", "grid.png"] {
        if dir.join(f).exists() {
            println!("look at  {}", dir.join(f).display());
        }
    }
    Ok(0)
}

/// `approxlab render`: the learned function of a run as a PNG.
pub fn render(dir: &Path, view: &ViewArgs) -> Result<u8> {
    let opts = view.options()?;
    let (config, data, trainer, _) = run::load_run(dir)?;
    run::init_threads(config.threads)?;
    let f = run::model_fn(trainer.model());
    let spinner = progress::spinner(&format!("rendering {}", view.out.display()), false);
    let img = render::render(data.as_ref(), &f, &opts)?;
    spinner.finish_and_clear();
    write_png_atomic(&view.out, &img).map_err(|e| anyhow!("{e}"))?;
    println!("wrote {}", view.out.display());
    Ok(0)
}

/// `approxlab truth`: a data set's own function as a PNG, with `--set` applied to the data spec.
pub fn truth(data: &str, view: &ViewArgs, set: &[String]) -> Result<u8> {
    let opts: RenderOptions = view.options()?;
    let mut table = toml::Value::try_from(DataSpec::parse(data).map_err(|e| anyhow!("data: {e}"))?)?;
    for s in set {
        let (k, v) = s.split_once('=').ok_or_else(|| anyhow!("--set '{s}': expected KEY=VALUE"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.to_string()));
        table.as_table_mut().expect("data specs are tables").insert(k.trim().to_string(), value);
    }
    let spec: DataSpec = table.try_into().map_err(|e: toml::de::Error| anyhow!("data: {}", e.message().trim()))?;
    let data = spec.build(0).map_err(|e| anyhow!("data: {e}"))?;
    if !data.has_truth() {
        bail!("{} has no ground-truth function to render", data.name());
    }
    let f = |x: &[f32], out: &mut [f32]| {
        if !data.truth(x, out) {
            out.fill(f32::NAN);
        }
    };
    let img = render::render(data.as_ref(), &f, &opts)?;
    write_png_atomic(&view.out, &img).map_err(|e| anyhow!("{e}"))?;
    println!("wrote {}", view.out.display());
    Ok(0)
}

pub fn describe(config: &RunConfig, trainer: &approxlab_engine::Trainer, data: &dyn approxlab_data::Dataset) {
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

pub fn train(config: RunConfig, quiet: bool) -> Result<(PathBuf, u8)> {
    let (dir, code, _) = train_summarised(config, quiet)?;
    Ok((dir, code))
}

/// [`train`], also giving the run's summary.
pub fn train_summarised(mut config: RunConfig, quiet: bool) -> Result<(PathBuf, u8, summary::Summary)> {
    run::init_threads(config.threads)?;
    let (data, mut trainer, dir) = run::prepare(&mut config)?;
    if !quiet {
        describe(&config, &trainer, data.as_ref());
        eprintln!("run      {}", dir.display());
    }
    run::install_ctrlc();
    let outcome = run_loop::train_loop(&config, &dir, data.clone(), &mut trainer, Session::new(quiet))?;
    let summary = outcome.summary.clone();
    let code = finish(&dir, &config, data.as_ref(), &trainer, outcome)?;
    Ok((dir, code, summary))
}

/// What `train_served` does once training has finished (the video, say), before the page waits for Ctrl-C.
pub type AfterTraining<'a> = dyn Fn(&Path) -> Result<()> + 'a;

/// `train --serve`: the run as `run-1` on the live view, which stays up after training until Ctrl-C.
pub fn train_served(
    mut config: RunConfig,
    quiet: bool,
    listen: &ListenArgs,
    after: Option<&AfterTraining<'_>>,
) -> Result<(PathBuf, u8)> {
    run::init_threads(config.threads)?;
    let (data, mut trainer, dir) = run::prepare(&mut config)?;
    let lab = Arc::new(live::CliLab::new(config.output.dir.clone(), None, queue::RunQueue::default_limit()));
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
    let outcome =
        run_loop::train_loop(&config, &dir, data.clone(), &mut trainer, Session::new(quiet).on_page(&live_run));
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

pub fn finish(
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

pub fn resume(
    dir: &Path,
    steps: Option<u64>,
    time: Option<String>,
    precision: Option<String>,
    quiet: bool,
) -> Result<u8> {
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
    let outcome =
        run_loop::train_loop(&config, dir, data.clone(), &mut trainer, Session::new(quiet).resumed_after(wall))?;
    finish(dir, &config, data.as_ref(), &trainer, outcome)
}

pub fn eval(dir: &Path) -> Result<u8> {
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
pub fn demo(out: PathBuf, quiet: bool, serve: Option<&ListenArgs>) -> Result<u8> {
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
