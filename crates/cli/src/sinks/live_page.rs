//! The live page: the loss curve's points and the weights for its pictures, at most every
//! [`approxlab_serve::PUBLISH_PERIOD`], and frames when the page asks for them.

use crate::run_loop::{EndEvent, Run, Sink, StepEvent};
use anyhow::Result;
use approxlab_engine::Trainer;
use approxlab_serve::{LiveRun, Point, PUBLISH_PERIOD};
use std::time::Instant;

pub struct LivePage<'a> {
    live: &'a LiveRun,
    last_publish: Instant,
    published_step: u64,
    last_loss: Option<f64>,
}

impl<'a> LivePage<'a> {
    pub fn new(live: &'a LiveRun, trainer: &Trainer) -> LivePage<'a> {
        LivePage { live, last_publish: Instant::now(), published_step: trainer.steps_done(), last_loss: None }
    }
}

impl Sink for LivePage<'_> {
    fn step(&mut self, _run: &Run, e: &StepEvent) -> Result<()> {
        self.last_loss = Some(e.stats.loss);
        if self.last_publish.elapsed() >= PUBLISH_PERIOD {
            self.last_publish = Instant::now();
            self.published_step = e.step;
            let point = Point {
                step: e.step,
                wall_s: e.wall_s,
                loss: e.stats.loss,
                lr: e.stats.lr,
                samples_per_s: e.samples_per_s,
            };
            self.live.publish(point, e.trainer.params());
        }
        if self.live.frame_due() {
            self.live.render_frame(e.step, e.trainer.params());
        }
        Ok(())
    }

    /// The last steps' point, so that the page's loss curve ends where the run did.
    fn end(&mut self, _run: &Run, end: &EndEvent) -> Result<()> {
        let t = end.trainer;
        if let (Some(loss), true) = (self.last_loss, self.published_step != t.steps_done()) {
            let point =
                Point { step: t.steps_done(), wall_s: end.wall_s, loss, lr: t.lr(), samples_per_s: end.samples_per_s };
            self.live.publish(point, t.params());
        }
        Ok(())
    }
}
