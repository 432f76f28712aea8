//! `summary.json`, written atomically at the end of every session.

use crate::run_loop::{EndEvent, Run, Sink, StepEvent};
use anyhow::Result;

pub struct SummaryFile;

impl Sink for SummaryFile {
    fn step(&mut self, _run: &Run, _event: &StepEvent) -> Result<()> {
        Ok(())
    }

    fn end(&mut self, run: &Run, end: &EndEvent) -> Result<()> {
        let text = serde_json::to_string_pretty(end.summary)?;
        Ok(approxlab_engine::checkpoint::atomic_write(&run.dir.join("summary.json"), text.as_bytes())?)
    }
}
