//! `docs/leaderboard.md`: one table row per recorded score, best PSNR first, written by `approxlab challenge --record`
//! only.

use super::ScoreFile;
use anyhow::{Context, Result};
use std::path::Path;

const HEADER: &str = "# Mandelbrot challenge leaderboard

Written by `approxlab challenge --record`, not by hand: every row is one command's score under the protocol of
[challenge.md](challenge.md), best PSNR first. Zoom columns are the PSNR on the public windows of widths
0.1 / 1e-2 / 1e-3 / 1e-4.

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

/// The PSNR column of a table row, or `None` for a line that is not one of the table's rows.
fn row_psnr(line: &str) -> Option<f64> {
    line.strip_prefix("| ")?.split(" | ").nth(1)?.trim().parse().ok()
}

/// `text` with `row` inserted into its table before the first row of lower PSNR (after rows of equal PSNR, so
/// earlier records of a tie stay first), or after the last row.
fn insert_sorted(text: &str, row: &str, psnr: f64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let last_row = lines.iter().rposition(|l| row_psnr(l).is_some());
    let at = lines
        .iter()
        .position(|l| row_psnr(l).is_some_and(|p| p < psnr))
        .or(last_row.map(|i| i + 1))
        .unwrap_or(lines.len());
    let mut out: Vec<&str> = lines[..at].to_vec();
    out.push(row.trim_end());
    out.extend(&lines[at..]);
    out.join("\n") + "\n"
}

/// Records the score's row in the table, keeping it sorted by PSNR, creating the file with its header when it does
/// not exist. The whole file is rewritten atomically, so a crash leaves the old one.
pub fn record(path: &Path, score: &ScoreFile) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(e).with_context(|| format!("leaderboard {}: cannot read", path.display())),
    };
    let text = insert_sorted(&text, &row(score), score.psnr);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("leaderboard {}: cannot create its folder", path.display()))?;
    }
    approxlab_engine::checkpoint::atomic_write(path, text.as_bytes())
        .with_context(|| format!("leaderboard {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, psnr: f64) -> String {
        format!("| {name} | {psnr:.2} | 1e-4 | - / - / - / - | 1 | 1 | 1s | cpu, 2 threads | 0.1.0 | 2026-12-04 |\n")
    }

    #[test]
    fn rows_go_in_by_psnr_best_first_and_text_after_the_table_stays() {
        let mut text = HEADER.to_string();
        for (name, psnr) in [("mid", 30.0), ("low", 20.0), ("top", 40.0), ("tie", 30.0)] {
            text = insert_sorted(&text, &line(name, psnr), psnr);
        }
        text += "\nA note under the table.\n";
        text = insert_sorted(&text, &line("bottom", 10.0), 10.0);
        let names: Vec<&str> =
            text.lines().filter(|l| row_psnr(l).is_some()).map(|l| l.split(" | ").next().unwrap()).collect();
        assert_eq!(names, ["| top", "| mid", "| tie", "| low", "| bottom"]);
        assert!(text.starts_with(HEADER), "the header is kept");
        assert!(text.ends_with("\nA note under the table.\n"), "{text}");
        assert_eq!(row_psnr("| entry | PSNR dB | boundary MSE |"), None, "the header row is not a row");
    }
}
