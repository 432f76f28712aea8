//! The run loop: a short loop over `step -> events`. What a step does to the world (the metrics log, checkpoints,
//! frames, the progress bar, the live page, the summary) lives in [`Sink`]s; what may end or hold a run (its
//! budget, Ctrl-C, the page's pause, stop and save) in [`Control`]s; where batches come from in a
//! [`crate::samplers::Sampler`]. Adding a sink is a file in `sinks/` and a line in [`crate::sinks::standard`].

use crate::config::RunConfig;
use crate::run::{evaluate, evaluate_on};
use crate::summary::{Summary, Tracker};
use anyhow::Result;
use approxlab_data::{Dataset, Metrics};
use approxlab_engine::rng::Rng;
use approxlab_engine::{EngineError, StepStats, Trainer};
use approxlab_serve::LiveRun;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Its budget was spent.
    Finished,
    /// A signal (Ctrl-C, SIGTERM, SIGHUP) stopped it; it saved and can be resumed.
    Interrupted,
    /// The live page stopped it.
    Stopped,
    /// The loss or gradient became NaN or infinite; the last good checkpoint is kept.
    Diverged,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Stopped => "stopped",
            RunStatus::Diverged => "diverged",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct RunOutcome {
    pub status: RunStatus,
    pub exit_code: u8,
    pub summary: Summary,
}

/// The first of a step and a time limit that is reached ends the run.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub steps: Option<u64>,
    pub time: Option<Duration>,
}

impl Budget {
    /// Fraction of the budget done after `step` steps and `elapsed` training time this session.
    pub fn progress(&self, step: u64, elapsed: Duration) -> f32 {
        match (self.steps, self.time) {
            (Some(n), _) => step as f32 / n.max(1) as f32,
            (None, Some(t)) => (elapsed.as_secs_f64() / t.as_secs_f64().max(1e-9)) as f32,
            _ => 0.0,
        }
    }

    pub fn spent(&self, step: u64, elapsed: Duration) -> bool {
        self.steps.is_some_and(|n| step >= n) || self.time.is_some_and(|t| elapsed >= t)
    }
}

/// Training time: this session's, less the time the page held the run paused, plus earlier sessions' wall time.
pub struct Clock {
    start: Instant,
    paused: Duration,
    wall_before: f64,
}

impl Clock {
    fn new(wall_before: f64) -> Clock {
        Clock { start: Instant::now(), paused: Duration::ZERO, wall_before }
    }
    /// This session's training time.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed().saturating_sub(self.paused)
    }
    /// The run's training time over all sessions, in seconds.
    pub fn wall(&self) -> f64 {
        self.wall_before + self.elapsed().as_secs_f64()
    }
    pub fn add_pause(&mut self, paused: Duration) {
        self.paused += paused;
    }
    /// Runs `work` off the clock: time spent in it is not training time.
    fn leave_out<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = work();
        self.add_pause(start.elapsed());
        result
    }
}

/// What every sink and control may read about the run.
pub struct Run<'a> {
    pub config: &'a RunConfig,
    pub dir: &'a Path,
    pub data: &'a Arc<dyn Dataset>,
    pub budget: Budget,
    /// The step this session started from (0, or where a resumed run continues).
    pub start_step: u64,
}

/// One epoch's classification metrics (a line of the metrics log), and the accuracies for a plot.
pub struct EpochMetrics {
    pub line: serde_json::Value,
    pub epoch: u64,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
}

/// What happened in one step.
pub struct StepEvent<'a> {
    /// Steps completed.
    pub step: u64,
    pub stats: StepStats,
    pub wall_s: f64,
    /// This session's training time.
    pub elapsed: Duration,
    pub progress: f32,
    /// Samples per second of training this session.
    pub samples_per_s: f64,
    pub trainer: &'a Trainer,
    /// Set at the step that completes an epoch of a classification data set.
    pub epoch: Option<&'a EpochMetrics>,
}

pub struct EndEvent<'a> {
    pub status: RunStatus,
    /// The divergence, for the message that names the last good checkpoint.
    pub diverged: Option<&'a EngineError>,
    pub trainer: &'a Trainer,
    pub wall_s: f64,
    pub summary: &'a Summary,
    pub samples_per_s: f64,
}

/// A side effect of the run loop.
pub trait Sink {
    /// After the batch's forward and backward gave a finite loss and before the update: the trainer still holds
    /// the parameters of step `trainer.steps_done()`, and `rng_before` is the data stream from before this batch (so a
    /// checkpoint taken here resumes by drawing the same batch). Time spent here is not training time.
    fn before_update(&mut self, _run: &Run, _trainer: &Trainer, _rng_before: &Rng, _wall_s: f64) -> Result<()> {
        Ok(())
    }
    fn step(&mut self, run: &Run, event: &StepEvent) -> Result<()>;
    fn end(&mut self, _run: &Run, _end: &EndEvent) -> Result<()> {
        Ok(())
    }
}

/// An input of the run loop, asked before every step: it may hold the run (time held is no training time) or end
/// it.
pub trait Control {
    fn check(&mut self, run: &Run, trainer: &Trainer, clock: &mut Clock) -> Result<Option<RunStatus>>;
}

/// How this session of a run is watched: its training time before (a resumed run's), and where it reports.
#[derive(Clone, Copy, Default)]
pub struct Session<'a> {
    pub wall_before: f64,
    /// No progress bar and no start-up lines.
    pub quiet: bool,
    /// The live page's run, when the page shows this one.
    pub live: Option<&'a LiveRun>,
}

impl<'a> Session<'a> {
    pub fn new(quiet: bool) -> Session<'a> {
        Session { quiet, ..Session::default() }
    }

    pub fn resumed_after(self, wall_before: f64) -> Session<'a> {
        Session { wall_before, ..self }
    }

    pub fn on_page(self, live: &'a LiveRun) -> Session<'a> {
        Session { live: Some(live), ..self }
    }
}

/// Trains until a control ends the run or it diverges, with the standard sinks and controls, writing everything
/// into `dir`.
pub fn train_loop(
    config: &RunConfig,
    dir: &Path,
    data: Arc<dyn Dataset>,
    trainer: &mut Trainer,
    session: Session,
) -> Result<RunOutcome> {
    let budget =
        Budget { steps: config.budget.step_limit(data.len(), config.train.batch)?, time: config.budget.time_limit()? };
    let run = Run { config, dir, data: &data, budget, start_step: trainer.steps_done() };
    let mut state = LoopState::new(&run, trainer, session)?;
    let (status, diverged) = 'run: loop {
        for control in state.controls.iter_mut() {
            if let Some(status) = control.check(&run, trainer, &mut state.clock)? {
                break 'run (status, None);
            }
        }
        if let Some(diverged) = state.step(&run, trainer)? {
            break (RunStatus::Diverged, Some(diverged));
        }
    };
    state.finish(&run, trainer, status, diverged.as_ref())
}

/// What the run loop carries from step to step: its parts and its buffers, allocated once.
struct LoopState<'a> {
    sampler: Box<dyn crate::samplers::Sampler>,
    sinks: Vec<Box<dyn Sink + 'a>>,
    controls: Vec<Box<dyn Control + 'a>>,
    inputs: Vec<f64>,
    targets: Vec<f32>,
    injected_panic: Option<u64>,
    clock: Clock,
    tracker: Tracker,
}

impl<'a> LoopState<'a> {
    fn new(run: &Run, trainer: &Trainer, session: Session<'a>) -> Result<LoopState<'a>> {
        let Session { wall_before, quiet, live } = session;
        let (config, data) = (run.config, run.data);
        let sampler = crate::samplers::build(&config.sampler, data.clone(), config.seed, config.train.batch)?;
        if !quiet {
            eprintln!("sampler  {}", sampler.describe());
        }
        Ok(LoopState {
            sampler,
            sinks: crate::sinks::standard(run, trainer, quiet, live)?,
            controls: crate::controls::standard(live),
            inputs: vec![0.0f64; config.train.batch * data.input_dims()],
            targets: vec![0.0f32; config.train.batch * data.output_dims()],
            injected_panic: crate::run::injected_panic_step(run.dir),
            clock: Clock::new(wall_before),
            tracker: Tracker::new(trainer.steps_done(), config.train.batch, config.output.log_every),
        })
    }

    /// One step: sample, gradients, the sampler's feedback, the update, then every sink. Returns the divergence
    /// that ends the run, if any.
    fn step(&mut self, run: &Run, trainer: &mut Trainer) -> Result<Option<EngineError>> {
        if self.injected_panic == Some(trainer.steps_done()) {
            panic!("injected failure at step {} (APPROXLAB_INJECT_PANIC)", trainer.steps_done());
        }
        let budget = run.budget;
        if budget.steps.is_none() && budget.time.is_some() {
            trainer.set_budget_done(budget.progress(trainer.steps_done(), self.clock.elapsed()) as f64);
        }
        let rng_before = trainer.data_rng().clone();
        self.sampler.fill(trainer.steps_done(), trainer.data_rng_mut(), &mut self.inputs, &mut self.targets);
        let loss = trainer.compute_gradients_f64(&self.inputs, &self.targets)?;
        if loss.is_finite() {
            // Writing checkpoints, the work done here, is not training: like the page's pause, the clock leaves it
            // out, so that a time budget trains the same whatever the checkpoints cost (the first one of the
            // challenge champion, 1.3 GB, takes 2-4 s, and a 30-s run would lose a tenth of its steps to it).
            let (sinks, wall) = (&mut self.sinks, self.clock.wall());
            self.clock
                .leave_out(|| sinks.iter_mut().try_for_each(|s| s.before_update(run, trainer, &rng_before, wall)))?;
        }
        // The sampler's feedback runs on one core; the update streams the tables on the other meanwhile.
        let (sampler, inputs, targets) = (&mut self.sampler, &self.inputs, &self.targets);
        let ((), applied) =
            trainer.apply_gradients_beside(loss, |predictions| sampler.feedback(inputs, targets, predictions));
        let stats = match applied {
            Ok(stats) => stats,
            Err(e @ EngineError::Diverged { .. }) => return Ok(Some(e)),
            Err(e) => return Err(e.into()),
        };
        let elapsed = self.clock.elapsed();
        self.tracker.record(trainer.steps_done(), stats.loss, elapsed);
        let epoch = epoch_metrics(run, trainer)?;
        let event = StepEvent {
            step: trainer.steps_done(),
            stats,
            wall_s: self.clock.wall(),
            elapsed,
            progress: budget.progress(trainer.steps_done(), elapsed),
            samples_per_s: self.tracker.samples_per_s(trainer.steps_done(), elapsed),
            trainer,
            epoch: epoch.as_ref(),
        };
        for sink in self.sinks.iter_mut() {
            sink.step(run, &event)?;
        }
        Ok(None)
    }

    /// The summary and every sink's end; the exit code of the way the run ended.
    fn finish(
        mut self,
        run: &Run,
        trainer: &Trainer,
        status: RunStatus,
        diverged: Option<&EngineError>,
    ) -> Result<RunOutcome> {
        let summary = summarize(run, trainer, status, &self.clock, &self.tracker)?;
        let end = EndEvent {
            status,
            diverged,
            trainer,
            wall_s: self.clock.wall(),
            summary: &summary,
            samples_per_s: self.tracker.samples_per_s(trainer.steps_done(), self.clock.elapsed()),
        };
        for sink in self.sinks.iter_mut() {
            sink.end(run, &end)?;
        }
        let exit_code = match status {
            RunStatus::Interrupted => crate::run::interrupted_exit_code(),
            RunStatus::Diverged => 1,
            RunStatus::Finished | RunStatus::Stopped => 0,
        };
        Ok(RunOutcome { status, exit_code, summary })
    }
}

/// Training points used for the per-epoch training accuracy: enough for a stable figure, few enough to stay cheap.
const TRAIN_EVAL_POINTS: usize = 10_000;

/// At the step that completes an epoch of a classification data set: accuracy and cross-entropy on part of the
/// training set, the validation set and the test set (if any).
fn epoch_metrics(run: &Run, trainer: &Trainer) -> Result<Option<EpochMetrics>> {
    let (data, batch, step) = (run.data.as_ref(), run.config.train.batch as u64, trainer.steps_done());
    let (Some(classes), Some(n)) = (data.classes(), data.len()) else { return Ok(None) };
    let epoch = step * batch / n as u64;
    if step == 0 || epoch == (step - 1) * batch / n as u64 {
        return Ok(None);
    }
    let model = trainer.model();
    let entry = |m: Metrics, pred: &[f32], targets: &[f32]| serde_json::json!({"accuracy": m.accuracy, "loss": crate::run::cross_entropy(pred, targets, classes)});
    let mut line = serde_json::Map::new();
    if let Some((xs, ys)) = data.training_points() {
        let rows = (xs.len() / data.input_dims()).min(TRAIN_EVAL_POINTS);
        let (xs, ys) = (&xs[..rows * data.input_dims()], &ys[..rows * classes]);
        let (m, pred) = evaluate_on(model, data, xs, ys)?;
        line.insert("train".into(), entry(m, &pred, ys));
    }
    let eval = data.eval_set();
    let (m, pred) = evaluate_on(model, data, &eval.inputs, &eval.targets)?;
    line.insert("val".into(), entry(m, &pred, &eval.targets));
    if let Some(test) = data.test_set() {
        let (m, pred) = evaluate_on(model, data, &test.inputs, &test.targets)?;
        line.insert("test".into(), entry(m, &pred, &test.targets));
    }
    let mut line = serde_json::Value::Object(line);
    let acc = |k: &str| line[k]["accuracy"].as_f64().unwrap_or(f64::NAN);
    let (train_accuracy, val_accuracy) = (acc("train"), acc("val"));
    line["epoch"] = serde_json::json!(epoch);
    line["step"] = serde_json::json!(step);
    Ok(Some(EpochMetrics { line, epoch, train_accuracy, val_accuracy }))
}

/// The run's summary: what it was, how far and fast it trained, and its final metrics.
fn summarize(run: &Run, trainer: &Trainer, status: RunStatus, clock: &Clock, tracker: &Tracker) -> Result<Summary> {
    let data = run.data.as_ref();
    let eval = evaluate(trainer.model(), data)?;
    let (test, confusion_matrix) = match data.classes() {
        Some(classes) => {
            // The confusion matrix is of the test set when there is one, else of the validation set.
            let set = data.test_set().unwrap_or_else(|| data.eval_set());
            let (m, pred) = evaluate_on(trainer.model(), data, &set.inputs, &set.targets)?;
            let test = data.test_set().is_some().then_some(m);
            (test, Some(approxlab_data::confusion_matrix(&pred, &set.targets, classes)))
        }
        None => (None, None),
    };
    let model = trainer.model();
    let (train_loss, train_loss_steps) = tracker.train_loss();
    let wall_s = clock.wall();
    Ok(Summary {
        status,
        data: data.name(),
        sampler: run.config.sampler.clone(),
        params: model.n_params(),
        encoded_features: model.encoded_dims(),
        flops_per_sample: model.flops_per_sample(),
        parts: model.summary(),
        steps: trainer.steps_done(),
        samples: trainer.steps_done() * run.config.train.batch as u64,
        wall_s,
        samples_per_s: trainer.steps_done() as f64 * run.config.train.batch as f64 / wall_s.max(1e-9),
        steady_samples_per_s: tracker.steady_samples_per_s(trainer.steps_done(), clock.elapsed()),
        gemm: approxlab_engine::openblas::provider().describe(),
        precision: trainer.precision().precision.to_string(),
        products: trainer.precision().describe.clone(),
        train_loss,
        train_loss_steps,
        lr: trainer.lr(),
        eval,
        test,
        confusion_matrix,
        class_names: data.class_names(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_left_out_of_the_clock_is_not_training_time() {
        let mut clock = Clock::new(5.0);
        let slept = clock.leave_out(|| {
            std::thread::sleep(Duration::from_millis(300));
            "done"
        });
        assert_eq!(slept, "done");
        assert!(clock.elapsed() < Duration::from_millis(200), "{:?}", clock.elapsed());
        assert!(clock.wall() >= 5.0 && clock.wall() < 5.2);
    }
}
