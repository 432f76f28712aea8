//! `docs/leaderboard.md`: one table row per recorded score, appended by `approxlab challenge --record` only.

use super::ScoreFile;
use anyhow::{Context, Result};
use std::path::Path;

const HEADER: &str = "# Mandelbrot challenge leaderboard

Written by `approxlab challenge --record`, not by hand: every row is one command's score under the protocol of
[challenge.md](challenge.md). Zoom columns are the PSNR on the public windows of widths 0.1 / 1e-2 / 1e-3 / 1e-4.

| entry | PSNR dB | boundary MSE | zoom 0.1 / 1e-2 / 1e-3 / 1e-4 dB | steps | samples/s | budget | machine | approxlab | date |
|---|---:|---:|---|---:|---:|---|---|---|---|
";

fn row(s: &ScoreFile) -> String {
    let zoom = |width: f64| {
        s.zooms
            .iter()
            .find(|z| {
                (z.zoom.width - width).abs() < width * 1e-9
                    && super::protocol::PUBLIC_ZOOMS.iter().any(|p| p.0 == z.zoom.name)
            })
            .map_or("-".into(), |z| format!("{:.2}", z.score.psnr))
    };
    format!(
        "| {} | {:.2} | {} | {} / {} / {} / {} | {} | {:.0} | {} | {}, {} threads | {} | {} |\n",
        s.name,
        s.psnr,
        s.boundary_mse.map_or("-".into(), |b| format!("{b:.3e}")),
        zoom(0.1),
        zoom(1e-2),
        zoom(1e-3),
        zoom(1e-4),
        s.steps,
        s.samples_per_s,
        s.budget.as_deref().unwrap_or("-"),
        s.machine.cpu,
        s.machine.threads,
        s.version,
        s.date
    )
}

/// Appends the score's row, creating the file with its header when it does not exist. The whole file is
/// rewritten atomically, so a crash leaves the old one.
pub fn append(path: &Path, score: &ScoreFile) -> Result<()> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(e).with_context(|| format!("leaderboard {}: cannot read", path.display())),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text += &row(score);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("leaderboard {}: cannot create its folder", path.display()))?;
    }
    approxlab_engine::checkpoint::atomic_write(path, text.as_bytes())
        .with_context(|| format!("leaderboard {}", path.display()))
}
