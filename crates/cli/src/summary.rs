//! A run's `summary.json`, typed, and the figures of it that the loop tracks as it goes.

use crate::run_loop::RunStatus;
use crate::samplers::SamplerSpec;
use approxlab_data::Metrics;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub status: RunStatus,
    pub data: String,
    #[serde(default)]
    pub sampler: SamplerSpec,
    pub params: usize,
    pub encoded_features: usize,
    pub flops_per_sample: u64,
    pub parts: Vec<approxlab_engine::model::PartSummary>,
    pub steps: u64,
    /// Samples trained on, over all sessions of the run.
    #[serde(default)]
    pub samples: u64,
    /// Training seconds over all sessions (time paused from the page left out).
    pub wall_s: f64,
    /// `samples / wall_s`: everything included (batches, targets computed on the fly, checkpoints, frames).
    pub samples_per_s: f64,
    /// Samples per second over the last half of this session's training time: the rate once warmed up.
    #[serde(default)]
    pub steady_samples_per_s: f64,
    /// The kernels the matrix products ran on (`samples_per_s` depends on them).
    pub gemm: String,
    /// The precision of the dense layers' products, `f32` or `bf16`, and what ran them.
    pub precision: String,
    pub products: String,
    /// Mean training loss over the last log window (`output.log_every` steps ending at a multiple of it, or the
    /// steps since when there is none), the same for a resumed and an uninterrupted run.
    pub train_loss: Option<f64>,
    /// The steps that window covered.
    #[serde(default)]
    pub train_loss_steps: u64,
    pub lr: f32,
    pub eval: Metrics,
    /// Classification: the held-out test set's metrics and the confusion matrix (rows true, columns predicted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<Vec<Vec<u64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
}

impl Summary {
    pub fn read(dir: &std::path::Path) -> anyhow::Result<Summary> {
        use anyhow::Context;
        let path = dir.join("summary.json");
        let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not a run summary", path.display()))
    }

    /// How the run in `dir` ended, read from its summary alone, so that a summary of another version (other fields)
    /// still tells; `None` without a readable one.
    pub fn read_status(dir: &std::path::Path) -> Option<RunStatus> {
        #[derive(Deserialize)]
        struct StatusOnly {
            status: RunStatus,
        }
        let bytes = std::fs::read(dir.join("summary.json")).ok()?;
        serde_json::from_slice::<StatusOnly>(&bytes).ok().map(|s| s.status)
    }
}

/// Most `(step, time)` marks kept for the steady rate; when full, every other one is dropped and marks are taken
/// half as often, so memory stays bounded however long the run.
const MAX_MARKS: usize = 1024;

/// Throughput and the training loss over log windows, updated every step without allocating.
pub struct Tracker {
    start_step: u64,
    batch: usize,
    log_every: u64,
    marks: Vec<(u64, f64)>,
    mark_every: u64,
    window_sum: f64,
    window_steps: u64,
    last_window: Option<(f64, u64)>,
}

impl Tracker {
    pub fn new(start_step: u64, batch: usize, log_every: u64) -> Tracker {
        let mut marks = Vec::with_capacity(MAX_MARKS);
        marks.push((start_step, 0.0));
        Tracker {
            start_step,
            batch,
            log_every: log_every.max(1),
            marks,
            mark_every: 1,
            window_sum: 0.0,
            window_steps: 0,
            last_window: None,
        }
    }

    /// After step `step` (completed) with this loss, `elapsed` into the session.
    pub fn record(&mut self, step: u64, loss: f64, elapsed: Duration) {
        self.window_sum += loss;
        self.window_steps += 1;
        if step.is_multiple_of(self.log_every) {
            self.last_window = Some((self.window_sum / self.window_steps as f64, self.window_steps));
            self.window_sum = 0.0;
            self.window_steps = 0;
        }
        if (step - self.start_step).is_multiple_of(self.mark_every) {
            if self.marks.len() == MAX_MARKS {
                let kept: Vec<(u64, f64)> = self.marks.iter().copied().step_by(2).collect();
                self.marks.clear();
                self.marks.extend(kept);
                self.mark_every *= 2;
            }
            self.marks.push((step, elapsed.as_secs_f64()));
        }
    }

    pub fn samples_per_s(&self, step: u64, elapsed: Duration) -> f64 {
        (step - self.start_step) as f64 * self.batch as f64 / elapsed.as_secs_f64().max(1e-9)
    }

    /// The rate from the mark nearest half of the session's time to its end.
    pub fn steady_samples_per_s(&self, step: u64, elapsed: Duration) -> f64 {
        let end = elapsed.as_secs_f64();
        let half = self.marks.iter().rev().find(|m| m.1 <= end / 2.0).copied().unwrap_or(self.marks[0]);
        let (steps, secs) = (step.saturating_sub(half.0), end - half.1);
        if steps == 0 || secs <= 0.0 {
            return self.samples_per_s(step, elapsed);
        }
        steps as f64 * self.batch as f64 / secs
    }

    /// Mean loss of the last complete log window, else of the steps since the last log point, and its steps.
    pub fn train_loss(&self) -> (Option<f64>, u64) {
        match self.last_window {
            Some((mean, steps)) => (Some(mean), steps),
            None if self.window_steps > 0 => (Some(self.window_sum / self.window_steps as f64), self.window_steps),
            None => (None, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_train_loss_is_the_last_log_window_whatever_step_the_session_began_at() {
        let loss = |s: u64| 1.0 / s as f64;
        let mut whole = Tracker::new(0, 4, 10);
        (1..=30).for_each(|s| whole.record(s, loss(s), Duration::from_millis(s)));
        let mut resumed = Tracker::new(13, 4, 10);
        (14..=30).for_each(|s| resumed.record(s, loss(s), Duration::from_millis(s)));
        let expected = (21..=30).map(loss).sum::<f64>() / 10.0;
        assert_eq!(whole.train_loss(), (Some(expected), 10));
        assert_eq!(resumed.train_loss(), whole.train_loss());
        let mut short = Tracker::new(0, 4, 10);
        (1..=3).for_each(|s| short.record(s, 2.0, Duration::from_millis(s)));
        assert_eq!(short.train_loss(), (Some(2.0), 3), "a run shorter than a window: its steps");
    }

    #[test]
    fn steady_rate_leaves_out_a_slow_start() {
        let mut t = Tracker::new(0, 100, 10);
        // 10 slow steps of 0.2 s, then 5000 fast ones of 1 ms.
        (1..=10).for_each(|s| t.record(s, 0.0, Duration::from_secs_f64(0.2 * s as f64)));
        (11..=5010).for_each(|s| t.record(s, 0.0, Duration::from_secs_f64(2.0 + (s - 10) as f64 * 1e-3)));
        let elapsed = Duration::from_secs(7);
        let overall = t.samples_per_s(5010, elapsed);
        let steady = t.steady_samples_per_s(5010, elapsed);
        assert!((overall - 5010.0 * 100.0 / 7.0).abs() < 1e-6);
        assert!((steady - 100_000.0).abs() < 2_000.0, "the last half runs at 1000 steps/s: {steady}");
        assert!(t.marks.len() <= MAX_MARKS);
    }
}
