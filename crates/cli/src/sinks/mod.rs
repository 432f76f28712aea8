//! The run loop's side effects, one [`Sink`] per file.

mod checkpoints;
mod frames;
mod live_page;
mod metrics;
mod progress;
mod score_estimate;
mod summary_file;

pub use checkpoints::save_checkpoint;

use crate::run_loop::{Run, Sink};
use anyhow::Result;
use approxlab_engine::Trainer;
use approxlab_serve::LiveRun;

/// The sinks of every run, in the order they see each event: the progress bar first (so that messages print
/// below it once it is gone), the summary last.
pub fn standard<'a>(
    run: &Run,
    trainer: &Trainer,
    quiet: bool,
    live: Option<&'a LiveRun>,
) -> Result<Vec<Box<dyn Sink + 'a>>> {
    let mut sinks: Vec<Box<dyn Sink + 'a>> = vec![
        Box::new(progress::ProgressBarSink::new(run, trainer, quiet)),
        Box::new(metrics::MetricsLog::open(run)?),
        Box::new(checkpoints::Checkpoints::new(run)),
        Box::new(frames::Frames::start(run, trainer)?),
    ];
    if let Some(live) = live {
        sinks.push(Box::new(live_page::LivePage::new(live, trainer)));
    }
    if let Some(estimate) = score_estimate::ScoreEstimate::for_run(run, live) {
        sinks.push(Box::new(estimate));
    }
    sinks.push(Box::new(summary_file::SummaryFile));
    Ok(sinks)
}
