//! `frames/step-N.png`: the learned function while it learns, every `output.frame_every` steps, every
//! `output.frame_seconds` of training, and/or `output.frames` frames spread over the budget. Frames are rendered
//! on a thread of their own from snapshots of the weights, so training waits for a PNG only when two frames are
//! already queued.

use crate::config::{self, RunConfig};
use crate::render::{self, Panel, RenderOptions};
use crate::run::model_fn;
use crate::run_loop::{EndEvent, Run, Sink, StepEvent};
use anyhow::{anyhow, Context, Result};
use approxlab_data::Dataset;
use approxlab_engine::{Model, Trainer};
use approxlab_view::{write_png_atomic, Colormap};
use std::path::Path;
use std::sync::{mpsc, Arc};

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

pub struct Frames {
    sender: Option<mpsc::SyncSender<FrameJob>>,
    /// Snapshot buffers the renderer is done with, for the next snapshots: a model's weights can be a GB (the
    /// challenge champion's tables), and a fresh buffer per frame would cost its page faults every time.
    spare: Option<mpsc::Receiver<Vec<f32>>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
    wants_losses: bool,
    losses: Vec<(f64, f64)>,
    accuracy: Vec<(f64, f64, f64)>,
    next_by_time: f64,
    /// Frames of `output.frames` written so far.
    budget_frames: u32,
}

impl Frames {
    pub fn start(run: &Run, trainer: &Trainer) -> Result<Frames> {
        let out = &run.config.output;
        let wants_losses = out.frame_panels.contains(&Panel::Loss);
        // Kept only for a loss panel; sized for the whole budget up front.
        let capacity =
            if wants_losses { run.budget.steps.map_or(1024, |n| (n / out.log_every) as usize + 1) } else { 0 };
        let mut frames = Frames {
            sender: None,
            spare: None,
            handle: None,
            wants_losses,
            losses: Vec::with_capacity(capacity),
            accuracy: Vec::new(),
            next_by_time: out.frame_seconds,
            budget_frames: 0,
        };
        if !out.frames_enabled() {
            return Ok(frames);
        }
        if out.frame_panels.contains(&Panel::Neurons) {
            render::neurons_drawable(run.data.as_ref()).context("output.frame_panels")?;
        }
        let (tx, rx) = mpsc::sync_channel::<FrameJob>(2);
        let (config, data, dir) = (run.config.clone(), run.data.clone(), run.dir.join("frames"));
        let model = Model::new(config.model.clone(), data.domain(), data.output_dims(), config.seed)?;
        let size = match &config.output.frame_size {
            Some(s) => config::parse_size(s)?,
            None => render::default_frame_size(data.as_ref()),
        };
        let colormap = Colormap::parse(&config.output.colormap).map_err(|e| anyhow!("{e}"))?;
        let (spare_tx, spare_rx) = mpsc::channel();
        frames.handle =
            Some(std::thread::spawn(move || render_frames(rx, spare_tx, model, &config, data, size, colormap, &dir)));
        frames.sender = Some(tx);
        frames.spare = Some(spare_rx);
        if trainer.steps_done() == 0 {
            frames.submit(trainer, "step 0".into(), 0.0);
        }
        Ok(frames)
    }

    fn submit(&self, trainer: &Trainer, caption: String, progress: f32) {
        if let Some(tx) = &self.sender {
            let mut params = self.spare.as_ref().and_then(|r| r.try_recv().ok()).unwrap_or_default();
            params.clear();
            params.extend_from_slice(trainer.params());
            let job = FrameJob {
                step: trainer.steps_done(),
                params,
                caption,
                progress,
                losses: self.losses.clone(),
                accuracy: self.accuracy.clone(),
            };
            let _ = tx.send(job);
        }
    }

    /// Whether a frame is due after this step, by any of the three cadences.
    fn due(&mut self, run: &Run, e: &StepEvent) -> bool {
        let out = &run.config.output;
        let by_steps = out.frame_every > 0 && e.step.is_multiple_of(out.frame_every);
        // Frame k of N at (k/N)^2 of the budget: dense at the start, where the picture changes fastest.
        let by_budget = out.frames > 0 && {
            let due = (out.frames as f32 * e.progress.clamp(0.0, 1.0).sqrt()).floor() as u32;
            let new = due > self.budget_frames;
            self.budget_frames = self.budget_frames.max(due);
            new
        };
        let (period, elapsed) = (out.frame_seconds, e.elapsed.as_secs_f64());
        let by_time = period > 0.0 && elapsed >= self.next_by_time;
        if by_time {
            self.next_by_time += period * ((elapsed - self.next_by_time) / period).floor().max(0.0) + period;
        }
        by_steps || by_time || by_budget
    }
}

#[allow(clippy::too_many_arguments)]
fn render_frames(
    jobs: mpsc::Receiver<FrameJob>,
    spare: mpsc::Sender<Vec<f32>>,
    mut model: Model,
    config: &RunConfig,
    data: Arc<dyn Dataset>,
    size: (u32, u32),
    colormap: Colormap,
    frames: &Path,
) -> Result<()> {
    let output = &config.output;
    for mut job in jobs {
        // The snapshot becomes the model's weights, and the model's last ones the next snapshot's buffer.
        std::mem::swap(&mut model.params, &mut job.params);
        let _ = spare.send(std::mem::take(&mut job.params));
        let f = model_fn(&model);
        let window = output
            .shot_window(job.step)
            .map(|[x0, x1, y0, y1]| approxlab_view::Window::new(x0, x1, y0, y1))
            .transpose()
            .map_err(|e| anyhow!("{e}"))?;
        let yaw = output.frame_turn.then_some(0.6 + std::f32::consts::TAU * job.progress);
        let opts =
            RenderOptions { size: Some(size), colormap, caption: job.caption, window, yaw, ..Default::default() };
        let img = if data.classes().is_some() {
            render::render_classification(data.as_ref(), &f, &opts.caption, Some(&job.accuracy))?
        } else {
            render::render_with_panels(data.as_ref(), &f, &opts, &output.frame_panels, &job.losses, Some(&model))?
        };
        write_png_atomic(frames.join(format!("step-{:08}.png", job.step)), &img).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

impl Sink for Frames {
    fn step(&mut self, run: &Run, e: &StepEvent) -> Result<()> {
        if self.sender.is_none() {
            return Ok(());
        }
        if self.wants_losses && e.step.is_multiple_of(run.config.output.log_every) {
            self.losses.push((e.step as f64, e.stats.loss));
        }
        if let Some(epoch) = e.epoch {
            self.accuracy.push((epoch.epoch as f64, epoch.train_accuracy, epoch.val_accuracy));
        }
        if self.due(run, e) {
            let caption = format!("step {}  loss {:.3e}  lr {:.1e}", e.step, e.stats.loss, e.stats.lr);
            self.submit(e.trainer, caption, e.progress);
        }
        Ok(())
    }

    fn end(&mut self, _run: &Run, _end: &EndEvent) -> Result<()> {
        drop(self.sender.take());
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| anyhow!("frame renderer crashed"))?,
            None => Ok(()),
        }
    }
}
