//! Checkpoints: `checkpoints/latest.safetensors` at the start (once its loss is known to be finite), every
//! `output.checkpoint_every` steps (also as a numbered file, the newest `output.keep_checkpoints` kept) and at the
//! end, so that the latest checkpoint is always a good one: a diverged run keeps the last one before it diverged.

use crate::run::{prune_numbered_checkpoints, CHECKPOINT};
use crate::run_loop::{EndEvent, Run, RunStatus, Sink, StepEvent};
use anyhow::Result;
use approxlab_engine::rng::Rng;
use approxlab_engine::{checkpoint, Trainer};
use serde_json::json;

pub struct Checkpoints {
    /// A checkpoint is written at the next point where the parameters have given a finite loss.
    due: bool,
}

impl Checkpoints {
    pub fn new(_run: &Run) -> Checkpoints {
        Checkpoints { due: true }
    }
}

/// Writes the trainer's state as the latest checkpoint (and a numbered one at multiples of `checkpoint_every`),
/// with `rng` as the data stream to resume from.
pub fn save_checkpoint(run: &Run, trainer: &Trainer, rng: &Rng, wall_s: f64) -> Result<()> {
    let extra = json!({ "wall_s": wall_s });
    checkpoint::save_with_rng(&run.dir.join(CHECKPOINT), trainer, rng, extra.clone())?;
    let every = run.config.output.checkpoint_every;
    if every > 0 && trainer.steps_done().is_multiple_of(every) {
        let numbered = run.dir.join(format!("checkpoints/step-{:08}.safetensors", trainer.steps_done()));
        checkpoint::save_with_rng(&numbered, trainer, rng, extra)?;
        prune_numbered_checkpoints(&run.dir.join("checkpoints"), run.config.output.keep_checkpoints, run.start_step);
    }
    Ok(())
}

impl Sink for Checkpoints {
    fn before_update(&mut self, run: &Run, trainer: &Trainer, rng_before: &Rng, wall_s: f64) -> Result<()> {
        if self.due {
            save_checkpoint(run, trainer, rng_before, wall_s)?;
            self.due = false;
        }
        Ok(())
    }

    fn step(&mut self, run: &Run, e: &StepEvent) -> Result<()> {
        let every = run.config.output.checkpoint_every;
        if every > 0 && e.step.is_multiple_of(every) {
            self.due = true;
        }
        Ok(())
    }

    fn end(&mut self, run: &Run, end: &EndEvent) -> Result<()> {
        if end.status != RunStatus::Diverged {
            return save_checkpoint(run, end.trainer, end.trainer.data_rng(), end.wall_s);
        }
        let path = run.dir.join(CHECKPOINT);
        let last = checkpoint::load(&path).ok().map_or("none".into(), |(t, _)| t.steps_done().to_string());
        let what = end.diverged.map_or("diverged".to_string(), |e| e.to_string());
        eprintln!("approxlab: {what}. The last good checkpoint is {} (step {last}).", path.display());
        Ok(())
    }
}
