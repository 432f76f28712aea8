//! `metrics.jsonl`: loss lines every `output.log_every` steps, epoch lines of classification runs, evaluations every
//! `output.eval_every` steps, and the final evaluation (and test set).

use crate::run::evaluate;
use crate::run_loop::{EndEvent, Run, Sink, StepEvent};
use anyhow::{Context, Result};
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// Appends JSON lines, flushed per line so that a crash loses at most one.
pub struct MetricsLog(File);

impl MetricsLog {
    pub fn open(run: &Run) -> Result<MetricsLog> {
        let path = run.dir.join("metrics.jsonl");
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

impl Sink for MetricsLog {
    fn step(&mut self, run: &Run, e: &StepEvent) -> Result<()> {
        let (step, out) = (e.step, &run.config.output);
        if step.is_multiple_of(out.log_every) {
            let (loss, lr, sps) = (e.stats.loss, e.stats.lr, e.samples_per_s);
            self.write(json!({"step": step, "wall_s": e.wall_s, "loss": loss, "lr": lr, "samples_per_s": sps}))?;
        }
        if let Some(epoch) = e.epoch {
            let mut line = epoch.line.clone();
            line["wall_s"] = json!(e.wall_s);
            self.write(line)?;
        }
        if out.eval_every > 0 && step.is_multiple_of(out.eval_every) {
            let m = evaluate(e.trainer.model(), run.data.as_ref())?;
            self.write(json!({"step": step, "wall_s": e.wall_s, "eval": m}))?;
        }
        Ok(())
    }

    fn end(&mut self, _run: &Run, end: &EndEvent) -> Result<()> {
        let (step, wall_s) = (end.trainer.steps_done(), end.wall_s);
        self.write(json!({"step": step, "wall_s": wall_s, "eval": end.summary.eval}))?;
        if let Some(test) = &end.summary.test {
            self.write(json!({"step": step, "wall_s": wall_s, "test": test}))?;
        }
        Ok(())
    }
}
