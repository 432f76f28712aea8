//! A training run: its directory, the loop with budgets, logging, evaluation, checkpoints, frames, Ctrl-C and
//! divergence handling, and its summary.

use crate::config::{self, RunConfig};
use crate::render::{self, RenderOptions};
use anyhow::{anyhow, Context, Result};
use approxlab_data::{Dataset, Metrics};
use approxlab_engine::{checkpoint, EngineError, Model, Trainer};
use approxlab_serve::{LiveRun, Point, PUBLISH_PERIOD};
use approxlab_view::{hstack, label_panel, write_png_atomic, Colormap};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

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

/// Everything a new run needs before its first step: the data set, the trainer, and its directory with the
/// effective `config.toml`.
pub fn prepare(config: &RunConfig) -> Result<(Arc<dyn Dataset>, Trainer, PathBuf)> {
    let data = build_dataset(config)?;
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

/// Training points used for the per-epoch training accuracy: enough for a stable figure, few enough to stay cheap.
const TRAIN_EVAL_POINTS: usize = 10_000;

/// Accuracy and cross-entropy on part of the training set, the validation set and the test set (if any), for one
/// epoch's metrics line.
fn classification_epoch_metrics(model: &Model, data: &dyn Dataset, classes: usize) -> Result<serde_json::Value> {
    let mut out = serde_json::Map::new();
    if let Some((xs, ys)) = data.training_points() {
        let n = (xs.len() / data.input_dims()).min(TRAIN_EVAL_POINTS);
        let (m, pred) = evaluate_on(model, data, &xs[..n * data.input_dims()], &ys[..n * classes])?;
        out.insert(
            "train".into(),
            json!({"accuracy": m.accuracy, "loss": cross_entropy(&pred, &ys[..n * classes], classes)}),
        );
    }
    let eval = data.eval_set();
    let (m, pred) = evaluate_on(model, data, &eval.inputs, &eval.targets)?;
    out.insert("val".into(), json!({"accuracy": m.accuracy, "loss": cross_entropy(&pred, &eval.targets, classes)}));
    if let Some(test) = data.test_set() {
        let (m, pred) = evaluate_on(model, data, &test.inputs, &test.targets)?;
        out.insert(
            "test".into(),
            json!({"accuracy": m.accuracy, "loss": cross_entropy(&pred, &test.targets, classes)}),
        );
    }
    Ok(serde_json::Value::Object(out))
}

pub fn model_fn(model: &Model) -> impl Fn(&[f32], &mut [f32]) + Sync + '_ {
    move |x: &[f32], out: &mut [f32]| {
        if model.predict(x, out).is_err() {
            out.fill(f32::NAN);
        }
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    status: &'a str,
    data: String,
    params: usize,
    encoded_features: usize,
    flops_per_sample: u64,
    parts: Vec<approxlab_engine::model::PartSummary>,
    steps: u64,
    wall_s: f64,
    samples_per_s: f64,
    /// The kernels the matrix products ran on (`samples_per_s` depends on them).
    gemm: String,
    /// The precision of the dense layers' products, `f32` or `bf16`, and what ran them.
    precision: String,
    products: String,
    train_loss: Option<f64>,
    lr: f32,
    eval: Metrics,
    /// Classification: the held-out test set's metrics and the confusion matrix (rows true, columns predicted).
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confusion_matrix: Option<Vec<Vec<u64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class_names: Option<Vec<String>>,
}

/// Appends JSON lines to `metrics.jsonl`, flushed per line so that a crash loses at most one.
struct MetricsLog(File);

impl MetricsLog {
    fn open(dir: &Path) -> Result<MetricsLog> {
        let path = dir.join("metrics.jsonl");
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(MetricsLog(f))
    }
    fn write(&mut self, v: serde_json::Value) -> Result<()> {
        writeln!(self.0, "{v}").context("metrics.jsonl: cannot write")
    }
}

/// One frame to render: the weights at a moment of training.
struct FrameJob {
    step: u64,
    params: Vec<f32>,
    caption: String,
    /// Fraction of the budget done, for a camera that turns over the run.
    progress: f32,
    /// `(step, loss)` so far, for a loss panel (empty when there is none).
    losses: Vec<(f64, f64)>,
    /// Classification: `(epoch, train accuracy, validation accuracy)` so far.
    accuracy: Vec<(f64, f64, f64)>,
}

/// Renders frames on a thread of its own from snapshots of the weights, so training never waits for a PNG unless
/// two frames are already queued.
struct FrameWriter {
    sender: Option<mpsc::SyncSender<FrameJob>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

impl FrameWriter {
    fn start(config: &RunConfig, data: Arc<dyn Dataset>, dir: &Path) -> Result<FrameWriter> {
        if !config.output.frames_enabled() {
            return Ok(FrameWriter { sender: None, handle: None });
        }
        let mut model = Model::new(config.model.clone(), data.domain(), data.output_dims(), config.seed)?;
        let size = Some(match &config.output.frame_size {
            Some(s) => config::parse_size(s)?,
            None => render::default_frame_size(data.as_ref()),
        });
        let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
        let output = config.output.clone();
        let frames = dir.join("frames");
        let (tx, rx) = mpsc::sync_channel::<FrameJob>(2);
        let handle = std::thread::spawn(move || -> Result<()> {
            for job in rx {
                model.params.copy_from_slice(&job.params);
                let f = model_fn(&model);
                let window = output
                    .shot_window(job.step)
                    .map(|[x0, x1, y0, y1]| approxlab_view::Window::new(x0, x1, y0, y1))
                    .transpose()
                    .map_err(|e| anyhow!("{e}"))?;
                let yaw = output.frame_turn.then_some(0.6 + std::f32::consts::TAU * job.progress);
                let opts = RenderOptions { size, colormap, caption: job.caption, window, yaw, ..Default::default() };
                let img = if data.classes().is_some() {
                    render::render_classification(data.as_ref(), &f, &opts.caption, Some(&job.accuracy))?
                } else {
                    render::render_with_panels(data.as_ref(), &f, &opts, &output.frame_panels, &job.losses)?
                };
                write_png_atomic(frames.join(format!("step-{:08}.png", job.step)), &img).map_err(|e| anyhow!("{e}"))?;
            }
            Ok(())
        });
        Ok(FrameWriter { sender: Some(tx), handle: Some(handle) })
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        step: u64,
        params: &[f32],
        caption: String,
        progress: f32,
        losses: &[(f64, f64)],
        accuracy: &[(f64, f64, f64)],
    ) {
        if let Some(tx) = &self.sender {
            let job = FrameJob {
                step,
                params: params.to_vec(),
                caption,
                progress,
                losses: losses.to_vec(),
                accuracy: accuracy.to_vec(),
            };
            let _ = tx.send(job);
        }
    }

    fn finish(mut self) -> Result<()> {
        drop(self.sender.take());
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| anyhow!("frame renderer crashed"))?,
            None => Ok(()),
        }
    }
}

pub struct RunOutcome {
    pub status: &'static str,
    pub exit_code: u8,
}

/// Trains until the budget is spent (or Ctrl-C, or divergence), writing everything into `dir`.
pub fn train_loop(
    config: &RunConfig,
    dir: &Path,
    data: Arc<dyn Dataset>,
    trainer: &mut Trainer,
    wall_before: f64,
    quiet: bool,
    live: Option<&LiveRun>,
) -> Result<RunOutcome> {
    let step_limit = config.budget.step_limit(data.len(), config.train.batch)?;
    let time_limit = config.budget.time_limit()?;
    let batch = config.train.batch;
    let mut inputs = vec![0.0f32; batch * data.input_dims()];
    let mut targets = vec![0.0f32; batch * data.output_dims()];
    let mut log = MetricsLog::open(dir)?;
    let frames = FrameWriter::start(config, data.clone(), dir)?;
    let ckpt_path = dir.join(CHECKPOINT);
    let session_start = trainer.step;
    let save = |trainer: &Trainer, wall: f64| -> Result<()> {
        let extra = json!({ "wall_s": wall });
        checkpoint::save(&ckpt_path, trainer, extra.clone())?;
        let every = config.output.checkpoint_every;
        if every > 0 && trainer.step.is_multiple_of(every) {
            let numbered = dir.join(format!("checkpoints/step-{:08}.safetensors", trainer.step));
            checkpoint::save(&numbered, trainer, extra)?;
            prune_numbered_checkpoints(&dir.join("checkpoints"), config.output.keep_checkpoints, session_start);
        }
        Ok(())
    };

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = match step_limit {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new(time_limit.map_or(0, |t| t.as_millis() as u64)),
        };
        let template = if step_limit.is_some() {
            "{bar:30.cyan/blue} step {pos}/{len} {msg} ETA {eta}"
        } else {
            "{bar:30.cyan/blue} {elapsed}/{duration} {msg}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.set_position(if step_limit.is_some() { trainer.step } else { 0 });
        bar
    };

    let mut start = Instant::now();
    let mut last_publish = start;
    let (mut published_step, mut last_live_loss) = (trainer.step, None);
    let wall = |start: &Instant| wall_before + start.elapsed().as_secs_f64();
    let start_step = trainer.step;
    let samples_per_s = |step: u64, start: &Instant| {
        (step - start_step) as f64 * batch as f64 / start.elapsed().as_secs_f64().max(1e-9)
    };
    let mut recent_loss: Option<f64> = None;
    let mut status = "finished";
    let mut exit_code = 0;
    if trainer.step == 0 && config.output.frames_enabled() {
        frames.submit(0, &trainer.model.params, "step 0".into(), 0.0, &[], &[]);
    }
    let progress = |step: u64, start: &Instant| -> f32 {
        match (step_limit, time_limit) {
            (Some(n), _) => step as f32 / n.max(1) as f32,
            (None, Some(t)) => (start.elapsed().as_secs_f64() / t.as_secs_f64().max(1e-9)) as f32,
            _ => 0.0,
        }
    };
    let frame_period = config.output.frame_seconds;
    let mut next_frame_at = frame_period;
    let injected_panic = injected_panic_step(dir);
    let mut budget_frames = 0u32;
    // The starting point is checkpointed too (once its loss is known to be finite), so a run that diverges early
    // still has a good checkpoint.
    let mut checkpoint_due = true;
    let mut accuracy_history: Vec<(f64, f64, f64)> = Vec::new();
    let mut sampler = data.len().map(|n| crate::sampler::EpochSampler::new(config.seed, n));
    // Kept only for a loss panel; sized for the whole budget up front.
    let wants_losses = config.output.frame_panels.contains(&render::Panel::Loss);
    let mut loss_history: Vec<(f64, f64)> = Vec::with_capacity(if wants_losses {
        step_limit.map_or(1024, |n| (n / config.output.log_every) as usize + 1)
    } else {
        0
    });
    loop {
        if step_limit.is_some_and(|n| trainer.step >= n) || time_limit.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            status = "interrupted";
            exit_code = interrupted_exit_code();
            break;
        }
        if let Some(live) = live {
            // Time spent paused is no training time: the time budget and wall clock leave it out. A checkpoint
            // asked for while paused is saved without waiting for the run to go on.
            loop {
                start += live.wait_while_paused(&|| INTERRUPTED.load(Ordering::SeqCst));
                if live.take_save_request() {
                    save(trainer, wall(&start))?;
                    live.saved(trainer.step, &ckpt_path);
                }
                if !live.is_paused() || live.stop_requested() || INTERRUPTED.load(Ordering::SeqCst) {
                    break;
                }
            }
            if live.stop_requested() {
                status = "stopped";
                break;
            }
        }
        // A due checkpoint is written only once these parameters have given a finite loss, so that the latest
        // checkpoint is always a good one; it carries the sampler state from before this batch so that resuming
        // redraws the same batch.
        let rng_before = trainer.rng.clone();
        match (&mut sampler, data.training_points()) {
            (Some(s), Some((xs, ys))) => s.fill(trainer.step * batch as u64, xs, ys, &mut inputs, &mut targets),
            _ => data.fill_batch(&mut trainer.rng, &mut inputs, &mut targets),
        }
        if injected_panic == Some(trainer.step) {
            panic!("injected failure at step {} (APPROXLAB_INJECT_PANIC)", trainer.step);
        }
        let loss = trainer.compute_gradients(&inputs, &targets)?;
        if checkpoint_due && loss.is_finite() {
            let rng_after = std::mem::replace(&mut trainer.rng, rng_before);
            save(trainer, wall(&start))?;
            trainer.rng = rng_after;
            checkpoint_due = false;
        }
        let stats = match trainer.apply_gradients(loss) {
            Ok(s) => s,
            Err(e @ EngineError::Diverged { .. }) => {
                bar.abandon();
                eprintln!(
                    "approxlab: {e}. The last good checkpoint is {} (step {}).",
                    ckpt_path.display(),
                    last_checkpoint_step(&ckpt_path).map_or("none".into(), |s| s.to_string())
                );
                status = "diverged";
                exit_code = 1;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let step = trainer.step;
        recent_loss = Some(match recent_loss {
            Some(r) => 0.9 * r + 0.1 * stats.loss,
            None => stats.loss,
        });
        if step.is_multiple_of(config.output.log_every) {
            let w = wall(&start);
            let sps = samples_per_s(step, &start);
            log.write(json!({"step": step, "wall_s": w, "loss": stats.loss, "lr": stats.lr, "samples_per_s": sps}))?;
            bar.set_message(format!("loss {:.3e} lr {:.1e} {:.0} samples/s", stats.loss, stats.lr, sps));
            if wants_losses {
                loss_history.push((step as f64, stats.loss));
            }
        }
        if step_limit.is_some() {
            bar.set_position(step);
        } else if let Some(t) = time_limit {
            bar.set_position(start.elapsed().min(t).as_millis() as u64);
        }
        if let (Some(classes), Some(n)) = (data.classes(), data.len()) {
            let epoch = step * batch as u64 / n as u64;
            if epoch > (step - 1) * batch as u64 / n as u64 {
                let mut line = classification_epoch_metrics(&trainer.model, data.as_ref(), classes)?;
                let acc = |k: &str| line[k]["accuracy"].as_f64().unwrap_or(f64::NAN);
                accuracy_history.push((epoch as f64, acc("train"), acc("val")));
                line["epoch"] = json!(epoch);
                line["step"] = json!(step);
                line["wall_s"] = json!(wall(&start));
                log.write(line)?;
            }
        }
        if config.output.eval_every > 0 && step.is_multiple_of(config.output.eval_every) {
            let m = evaluate(&trainer.model, data.as_ref())?;
            log.write(json!({"step": step, "wall_s": wall(&start), "eval": m}))?;
        }
        let by_steps = config.output.frame_every > 0 && step.is_multiple_of(config.output.frame_every);
        // Frame k of N at (k/N)^2 of the budget: dense at the start, where the picture changes fastest.
        let by_budget = config.output.frames > 0 && {
            let due = (config.output.frames as f32 * progress(step, &start).clamp(0.0, 1.0).sqrt()).floor() as u32;
            let new = due > budget_frames;
            budget_frames = budget_frames.max(due);
            new
        };
        let by_time = frame_period > 0.0 && start.elapsed().as_secs_f64() >= next_frame_at;
        if by_time {
            next_frame_at += frame_period
                * ((start.elapsed().as_secs_f64() - next_frame_at) / frame_period).floor().max(0.0)
                + frame_period;
        }
        if by_steps || by_time || by_budget {
            let caption = format!("step {step}  loss {:.3e}  lr {:.1e}", stats.loss, stats.lr);
            frames.submit(
                step,
                &trainer.model.params,
                caption,
                progress(step, &start),
                &loss_history,
                &accuracy_history,
            );
        }
        if config.output.checkpoint_every > 0 && step.is_multiple_of(config.output.checkpoint_every) {
            checkpoint_due = true;
        }
        if let Some(live) = live {
            last_live_loss = Some(stats.loss);
            if last_publish.elapsed() >= PUBLISH_PERIOD {
                last_publish = Instant::now();
                published_step = step;
                let samples_per_s = samples_per_s(step, &start);
                let point = Point { step, wall_s: wall(&start), loss: stats.loss, lr: stats.lr, samples_per_s };
                live.publish(point, &trainer.model.params);
            }
            if live.frame_due() {
                live.render_frame(step, &trainer.model.params);
            }
        }
    }
    bar.finish_and_clear();
    let wall_s = wall(&start);
    // The last steps' point, so that the page's loss curve ends where the run did.
    if let (Some(live), Some(loss)) = (live, last_live_loss) {
        if published_step != trainer.step {
            let samples_per_s = samples_per_s(trainer.step, &start);
            let point = Point { step: trainer.step, wall_s, loss, lr: trainer.lr(), samples_per_s };
            live.publish(point, &trainer.model.params);
        }
    }
    if status != "diverged" {
        save(trainer, wall_s)?;
    }
    frames.finish()?;
    let eval = evaluate(&trainer.model, data.as_ref())?;
    log.write(json!({"step": trainer.step, "wall_s": wall_s, "eval": eval}))?;
    let (test, confusion_matrix) = match data.classes() {
        Some(classes) => {
            // The confusion matrix is of the test set when there is one, else of the validation set.
            let (metrics, pred, targets) = match data.test_set() {
                Some(t) => {
                    let (m, p) = evaluate_on(&trainer.model, data.as_ref(), &t.inputs, &t.targets)?;
                    (Some(m), p, t.targets.into_owned())
                }
                None => {
                    let e = data.eval_set();
                    let (_, p) = evaluate_on(&trainer.model, data.as_ref(), &e.inputs, &e.targets)?;
                    (None, p, e.targets.into_owned())
                }
            };
            if let Some(m) = &metrics {
                log.write(json!({"step": trainer.step, "wall_s": wall_s, "test": m}))?;
            }
            (metrics, Some(approxlab_data::confusion_matrix(&pred, &targets, classes)))
        }
        None => (None, None),
    };
    let summary = Summary {
        status,
        data: data.name(),
        params: trainer.model.n_params(),
        encoded_features: trainer.model.encoded_dims(),
        flops_per_sample: trainer.model.flops_per_sample(),
        parts: trainer.model.summary(),
        steps: trainer.step,
        wall_s,
        samples_per_s: samples_per_s(trainer.step, &start),
        gemm: approxlab_engine::openblas::provider().describe(),
        precision: trainer.precision().precision.to_string(),
        products: trainer.precision().describe.clone(),
        train_loss: recent_loss,
        lr: trainer.lr(),
        eval,
        test,
        confusion_matrix,
        class_names: data.class_names(),
    };
    let text = serde_json::to_string_pretty(&summary)?;
    approxlab_engine::checkpoint::atomic_write(&dir.join("summary.json"), text.as_bytes())?;
    Ok(RunOutcome { status, exit_code })
}

/// Fault injection for the tests that show a failing run cannot take others down: `APPROXLAB_INJECT_PANIC=NAME@STEP`
/// makes the run whose directory name ends with NAME (e.g. `web-run-2`) panic at STEP.
fn injected_panic_step(dir: &Path) -> Option<u64> {
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

fn last_checkpoint_step(path: &Path) -> Option<u64> {
    checkpoint::load(path).ok().map(|(t, _)| t.step)
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
    let has_truth = data.truth(&vec![0.0; data.input_dims()], &mut vec![0.0; data.output_dims()]);
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
