//! What may hold or end a run between steps: its budget, a signal, and the live page's pause, stop and save.

use crate::run::INTERRUPTED;
use crate::run_loop::{Clock, Control, Run, RunStatus};
use crate::sinks::save_checkpoint;
use anyhow::Result;
use approxlab_engine::Trainer;
use approxlab_serve::LiveRun;
use std::sync::atomic::Ordering;

/// The controls of every run, asked in this order before each step.
pub fn standard(live: Option<&LiveRun>) -> Vec<Box<dyn Control + '_>> {
    let mut controls: Vec<Box<dyn Control + '_>> = vec![Box::new(BudgetSpent), Box::new(Signal)];
    if let Some(live) = live {
        controls.push(Box::new(LivePage(live)));
    }
    controls
}

struct BudgetSpent;

impl Control for BudgetSpent {
    fn check(&mut self, run: &Run, trainer: &Trainer, clock: &mut Clock) -> Result<Option<RunStatus>> {
        Ok(run.budget.spent(trainer.steps_done(), clock.elapsed()).then_some(RunStatus::Finished))
    }
}

/// Ctrl-C, SIGTERM or SIGHUP: save and stop.
struct Signal;

impl Control for Signal {
    fn check(&mut self, _run: &Run, _trainer: &Trainer, _clock: &mut Clock) -> Result<Option<RunStatus>> {
        Ok(INTERRUPTED.load(Ordering::SeqCst).then_some(RunStatus::Interrupted))
    }
}

/// The page's pause (time paused is no training time: the budget and wall clock leave it out), stop, and save (a
/// checkpoint asked for while paused is written without waiting for the run to go on).
struct LivePage<'a>(&'a LiveRun);

impl Control for LivePage<'_> {
    fn check(&mut self, run: &Run, trainer: &Trainer, clock: &mut Clock) -> Result<Option<RunStatus>> {
        let live = self.0;
        let interrupted = || INTERRUPTED.load(Ordering::SeqCst);
        loop {
            clock.add_pause(live.wait_while_paused(&interrupted));
            if live.take_save_request() {
                save_checkpoint(run, trainer, trainer.data_rng(), clock.wall())?;
                live.saved(trainer.steps_done(), &run.dir.join(crate::run::CHECKPOINT));
            }
            if !live.is_paused() || live.stop_requested() || interrupted() {
                break;
            }
        }
        if interrupted() {
            return Ok(Some(RunStatus::Interrupted));
        }
        Ok(live.stop_requested().then_some(RunStatus::Stopped))
    }
}
