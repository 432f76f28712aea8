//! A training run's setting-up and ending: threads and signals, its directory, data set and trainer, evaluation,
//! final pictures, and loading a run back. The loop itself is in [`crate::run_loop`].

use crate::config::{self, RunConfig};
use crate::render::{self, RenderOptions};
use anyhow::{anyhow, Context, Result};
use approxlab_data::{Dataset, Metrics};
use approxlab_engine::{checkpoint, Model, Trainer};
use approxlab_view::{hstack, label_panel, write_png_atomic, Colormap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

pub const CHECKPOINT: &str = "checkpoints/latest.safetensors";

/// Set by the Ctrl-C handler (and SIGTERM, SIGHUP); the loop saves and stops at the next step boundary.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that set [`INTERRUPTED`] (0 for none or unknown).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The exit code of a run that a signal interrupted: 128 + the signal, as shells report it (130 for Ctrl-C, 143 for
/// SIGTERM, 129 for SIGHUP).
pub fn interrupted_exit_code() -> u8 {
    match SIGNAL.load(Ordering::SeqCst) {
        s @ 1..=127 => 128 + s as u8,
        _ => 130,
    }
}

/// Ctrl-C, SIGTERM (what `docker stop`, systemd and job schedulers send) and SIGHUP (a closed terminal) all ask the
/// run to save a checkpoint and its summary and stop; the same signal again exits at once without saving.
pub fn install_ctrlc() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let on_signal = |signal: i32| {
            // The signal is recorded before the flag, so that a loop that sees INTERRUPTED also sees which one.
            if SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                // After SIGHUP the terminal may be gone: a failed write must not end this thread.
                let _ = writeln!(std::io::stderr(), "approxlab: interrupted again, exiting without saving");
                std::process::exit(128 + signal);
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
        };
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            // Without the handler thread a signal keeps its default action (the process ends unsaved); that is
            // acceptable when the system cannot start one.
            if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
                let _ = std::thread::Builder::new().name("approxlab-signals".into()).spawn(move || {
                    for signal in signals.forever() {
                        on_signal(signal);
                    }
                });
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrlc::set_handler(move || on_signal(2));
        }
    });
}

/// Most worker threads a run may ask for, per core: more only adds contention.
const MAX_THREADS_PER_CORE: usize = 4;

pub fn init_threads(threads: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if threads > MAX_THREADS_PER_CORE * cores {
        anyhow::bail!(
            "threads {threads}: more than {MAX_THREADS_PER_CORE} per core on this machine's {cores} cores (at most {}; 0 for one per core)",
            MAX_THREADS_PER_CORE * cores
        );
    }
    let n = if threads == 0 { cores } else { threads };
    // Building the global pool twice (e.g. in tests that call this twice) is harmless: the first one stays.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    Ok(())
}

/// Creates `out/<name>` (or `out/<timestamp>`, with a suffix if taken) with its subdirectories.
pub fn create_run_dir(config: &RunConfig) -> Result<PathBuf> {
    let base = config.name.clone().unwrap_or_else(|| chrono::Local::now().format("%Y%m%d-%H%M%S").to_string());
    let out = &config.output.dir;
    std::fs::create_dir_all(out).with_context(|| format!("output directory {}: cannot create", out.display()))?;
    let mut dir = out.join(&base);
    let mut k = 2;
    while dir.exists() {
        if config.name.is_some() {
            anyhow::bail!(
                "run {}: already exists; resume it with `approxlab resume {}` or choose another --name",
                dir.display(),
                dir.display()
            );
        }
        dir = out.join(format!("{base}-{k}"));
        k += 1;
    }
    for sub in ["checkpoints", "frames"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("run {}: cannot create {sub}/", dir.display()))?;
    }
    Ok(dir)
}

pub fn build_dataset(config: &RunConfig) -> Result<Arc<dyn Dataset>> {
    Ok(Arc::from(config.data.build(config.seed).map_err(|e| anyhow!("data: {e}"))?))
}

pub fn build_trainer(config: &RunConfig, data: &dyn Dataset) -> Result<Trainer> {
    let model = Model::new(config.model.clone(), data.domain(), data.output_dims(), config.seed)
        .map_err(|e| anyhow!("model: {e}"))?;
    let steps = config.budget.step_limit(data.len(), config.train.batch)?;
    let mut train = config.train.clone();
    train.schedule = train.schedule.with_default_total(steps);
    let trainer = Trainer::new(model, train).map_err(|e| anyhow!("train: {e}"))?;
    if let Some(notice) = &trainer.precision().notice {
        eprintln!("notice: {notice}");
    }
    Ok(trainer)
}

/// Fits the model's config to the data set it will train on (a hash grid's `finest_from_data`), so that the run's
/// saved config says what it trains.
pub fn fit_to_data(config: &mut RunConfig, data: &dyn Dataset) {
    config.model = config.model.fitted_to_samples(data.input_dims(), data.len());
}

/// Everything a new run needs before its first step: the data set, the trainer, and its directory with the
/// effective `config.toml` (`config` fitted to the data set, see [`fit_to_data`]).
pub fn prepare(config: &mut RunConfig) -> Result<(Arc<dyn Dataset>, Trainer, PathBuf)> {
    let data = build_dataset(config)?;
    fit_to_data(config, data.as_ref());
    let trainer = build_trainer(config, data.as_ref())?;
    let dir = create_run_dir(config)?;
    checkpoint::atomic_write(&dir.join("config.toml"), config::to_toml(config).as_bytes())?;
    Ok((data, trainer, dir))
}

/// Predictions on the data set's evaluation set and their metrics.
pub fn evaluate(model: &Model, data: &dyn Dataset) -> Result<Metrics> {
    let eval = data.eval_set();
    Ok(evaluate_on(model, data, &eval.inputs, &eval.targets)?.0)
}

/// Metrics of the model on given points, and its predictions.
pub fn evaluate_on(model: &Model, data: &dyn Dataset, inputs: &[f32], targets: &[f32]) -> Result<(Metrics, Vec<f32>)> {
    let mut pred = vec![0.0; inputs.len() / data.input_dims() * data.output_dims()];
    model.predict(inputs, &mut pred)?;
    Ok((data.metrics(&pred, targets), pred))
}

/// Mean cross-entropy of predicted class probabilities against one-hot targets.
pub fn cross_entropy(pred: &[f32], targets: &[f32], classes: usize) -> f64 {
    let rows = pred.len() / classes.max(1);
    let sum: f64 = pred
        .chunks_exact(classes)
        .zip(targets.chunks_exact(classes))
        .map(|(p, t)| p.iter().zip(t).map(|(p, t)| -(*t as f64) * (p.max(1e-12) as f64).ln()).sum::<f64>())
        .sum();
    sum / rows.max(1) as f64
}

pub fn model_fn(model: &Model) -> impl Fn(&[f32], &mut [f32]) + Sync + '_ {
    move |x: &[f32], out: &mut [f32]| {
        if model.predict(x, out).is_err() {
            out.fill(f32::NAN);
        }
    }
}

/// Fault injection for the tests that show a failing run cannot take others down: `APPROXLAB_INJECT_PANIC=NAME@STEP`
/// makes the run whose directory name ends with NAME (e.g. `web-run-2`) panic at STEP.
pub fn injected_panic_step(dir: &Path) -> Option<u64> {
    let spec = std::env::var("APPROXLAB_INJECT_PANIC").ok()?;
    let (name, step) = spec.rsplit_once('@')?;
    dir.file_name()?.to_str()?.ends_with(name).then(|| step.parse().ok()).flatten()
}

/// Deletes all but the newest `keep` numbered checkpoints (`step-N.safetensors`) in `dir` among those from step
/// `since` on (the steps of this session: what earlier sessions kept, e.g. of a run made before the setting existed,
/// is left alone); `keep` 0 keeps them all. A file that cannot be listed or deleted is reported and skipped: the run
/// goes on.
pub fn prune_numbered_checkpoints(dir: &Path, keep: usize, since: u64) {
    if keep == 0 {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return eprintln!("approxlab: {}: cannot list checkpoints to prune: {e}", dir.display()),
    };
    let mut numbered: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step: u64 = name.strip_prefix("step-")?.strip_suffix(".safetensors")?.parse().ok()?;
            (step >= since).then(|| (step, e.path()))
        })
        .collect();
    numbered.sort();
    let excess = numbered.len().saturating_sub(keep);
    for (_, path) in &numbered[..excess] {
        if let Err(e) = std::fs::remove_file(path) {
            eprintln!("approxlab: {}: cannot delete an old checkpoint: {e}", path.display());
        }
    }
}

/// Writes `learned.png`, `truth.png` (when the data set has a truth) and `compare.png` (both, labelled).
pub fn render_final(dir: &Path, config: &RunConfig, data: &dyn Dataset, model: &Model) -> Result<Vec<PathBuf>> {
    if data.classes().is_some() {
        let f = model_fn(model);
        let img = render::render_classification(data, &f, "final", Some(&[]))?;
        let path = dir.join("classification.png");
        write_png_atomic(&path, &img).map_err(|e| anyhow!("{e}"))?;
        return Ok(vec![path]);
    }
    let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
    let opts = RenderOptions { colormap, ..Default::default() };
    let f = model_fn(model);
    let learned = render::render(data, &f, &opts)?;
    let mut written = vec![dir.join("learned.png")];
    write_png_atomic(&written[0], &learned).map_err(|e| anyhow!("{e}"))?;
    let has_truth = data.has_truth();
    if has_truth && !matches!(data.kind(), approxlab_data::Kind::Curve | approxlab_data::Kind::Surface) {
        let truth_fn = |x: &[f32], out: &mut [f32]| {
            data.truth(x, out);
        };
        let truth = render::render(data, &truth_fn, &opts)?;
        write_png_atomic(dir.join("truth.png"), &truth).map_err(|e| anyhow!("{e}"))?;
        let l = label_panel(&learned, "learned").map_err(|e| anyhow!("{e}"))?;
        let t = label_panel(&truth, "truth").map_err(|e| anyhow!("{e}"))?;
        let both = hstack(&[&l, &t], 8);
        write_png_atomic(dir.join("compare.png"), &both).map_err(|e| anyhow!("{e}"))?;
        written.push(dir.join("compare.png"));
    }
    Ok(written)
}

pub fn load_run(dir: &Path) -> Result<(RunConfig, Arc<dyn Dataset>, Trainer, f64)> {
    if !dir.is_dir() {
        anyhow::bail!("run {}: no such run directory", dir.display());
    }
    let config =
        config::read_config_file(&dir.join("config.toml")).with_context(|| format!("run {}", dir.display()))?;
    let ckpt = dir.join(CHECKPOINT);
    if !ckpt.exists() {
        anyhow::bail!("run {}: has no checkpoint ({CHECKPOINT} is missing)", dir.display());
    }
    let (trainer, extra) = checkpoint::load(&ckpt)?;
    let data = build_dataset(&config)?;
    let wall = extra.get("wall_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
    Ok((config, data, trainer, wall))
}
