//! Progress bars of the commands other than `train` (whose bar is a sink of the run loop): rendering, videos, zooms,
//! comparisons and scenes. indicatif draws them only on a terminal, so pipes and CI logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A bar over `len` items of `what` (frames, models), with elapsed time and an estimate of what is left.
pub fn bar(what: &str, len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let template = format!("{what} {{bar:30.cyan/blue}} {{pos}}/{{len}} {{msg}} {{elapsed}} (eta {{eta}})");
    ProgressBar::new(len).with_style(ProgressStyle::with_template(&template).expect("a valid template"))
}

/// A spinner with the elapsed time, for one piece of work of unknown length (a render).
pub fn spinner(what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(&format!("{{spinner}} {what} {{elapsed}}")).expect("a valid template");
    let bar = ProgressBar::new_spinner().with_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
