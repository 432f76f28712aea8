//! The Mandelbrot challenge's score while a run of its target trains, on the live page: the PSNR over a coarse grid
//! of the protocol's window, first after 2 s of training and then every 10 s. The final score (docs/challenge.md)
//! is taken on the protocol's full grid after training; this is its preview, and it costs about 1 % of the time.

use crate::challenge::protocol;
use crate::run_loop::{Run, Sink, StepEvent};
use anyhow::Result;
use approxlab_serve::LiveRun;

/// A 480 x 303 grid: the protocol's aspect, an eighth of its width.
const GRID: (usize, usize) = (480, 303);
const FIRST_S: f64 = 2.0;
const EVERY_S: f64 = 10.0;

pub struct ScoreEstimate<'a> {
    live: &'a LiveRun,
    next_s: f64,
    inputs: Vec<f64>,
    truth: Vec<f64>,
    learned: Vec<f32>,
}

impl<'a> ScoreEstimate<'a> {
    /// The sink for runs of the protocol's target that the page shows; `None` for every other run.
    pub fn for_run(run: &Run, live: Option<&'a LiveRun>) -> Option<ScoreEstimate<'a>> {
        let live = live.filter(|_| protocol::is_protocol_target(&run.config.data))?;
        Some(ScoreEstimate { live, next_s: FIRST_S, inputs: Vec::new(), truth: Vec::new(), learned: Vec::new() })
    }
}

impl Sink for ScoreEstimate<'_> {
    fn step(&mut self, run: &Run, e: &StepEvent) -> Result<()> {
        let elapsed = e.elapsed.as_secs_f64();
        if elapsed < self.next_s {
            return Ok(());
        }
        self.next_s = elapsed + EVERY_S;
        if self.truth.is_empty() {
            (self.inputs, self.truth) = protocol::grid(protocol::WINDOW, GRID);
            self.learned = vec![0.0; self.truth.len()];
        }
        e.trainer.model().predict_f64(&self.inputs, &mut self.learned)?;
        let score = protocol::score(&self.learned, &self.truth);
        let budget = run.budget.time.map_or(String::new(), |t| format!(" of {:.0} s", t.as_secs_f64()));
        self.live.set_message(Some(format!(
            "score estimate at step {}, {elapsed:.0} s{budget} of training: PSNR {:.2} dB, boundary MSE {} ({} x {} \
             grid of the window; the score after training uses {} x {})",
            e.step,
            score.psnr,
            score.boundary_mse.map_or("-".into(), |b| format!("{b:.2e}")),
            GRID.0,
            GRID.1,
            protocol::GRID.0,
            protocol::GRID.1
        )));
        Ok(())
    }
}
