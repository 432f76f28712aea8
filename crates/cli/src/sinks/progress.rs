//! The terminal's progress bar: steps of a step budget, or time of a time budget, with loss, rate and throughput.

use crate::run_loop::{EndEvent, Run, RunStatus, Sink, StepEvent};
use anyhow::Result;
use approxlab_engine::Trainer;
use indicatif::{ProgressBar, ProgressStyle};

pub struct ProgressBarSink {
    bar: ProgressBar,
}

impl ProgressBarSink {
    pub fn new(run: &Run, trainer: &Trainer, quiet: bool) -> ProgressBarSink {
        if quiet {
            return ProgressBarSink { bar: ProgressBar::hidden() };
        }
        let (length, template) = match (run.budget.steps, run.budget.time) {
            (Some(n), _) => (n, "{bar:30.cyan/blue} step {pos}/{len} {msg} ETA {eta}"),
            (None, t) => (t.map_or(0, |t| t.as_millis() as u64), "{bar:30.cyan/blue} {elapsed}/{duration} {msg}"),
        };
        let bar = ProgressBar::new(length);
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.set_position(if run.budget.steps.is_some() { trainer.steps_done() } else { 0 });
        ProgressBarSink { bar }
    }
}

impl Sink for ProgressBarSink {
    fn step(&mut self, run: &Run, e: &StepEvent) -> Result<()> {
        if e.step.is_multiple_of(run.config.output.log_every) {
            let msg = format!("loss {:.3e} lr {:.1e} {:.0} samples/s", e.stats.loss, e.stats.lr, e.samples_per_s);
            self.bar.set_message(msg);
        }
        match (run.budget.steps, run.budget.time) {
            (Some(_), _) => self.bar.set_position(e.step),
            (None, Some(t)) => self.bar.set_position(e.elapsed.min(t).as_millis() as u64),
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, _run: &Run, end: &EndEvent) -> Result<()> {
        if end.status == RunStatus::Diverged {
            self.bar.abandon();
        } else {
            self.bar.finish_and_clear();
        }
        Ok(())
    }
}
