//! `REPORT/index.html`: one self-contained page (no script, no network; pictures and videos beside it) built from
//! every `REPORT/NAME/scene.json` there, in the video's order. Scenes not run yet say how to run them.

use super::catalog::{Scene, SCENES};
use super::{Media, MediaKind, SceneResult, SceneTable};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A relative URL: each path segment percent-encoded where it is not a plain character.
fn href(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn read_result(out: &Path, scene: &Scene) -> Option<SceneResult> {
    let bytes = std::fs::read(out.join(scene.name).join("scene.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

const STYLE: &str = "
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 24px; color: #1c1c22; }
h1 { margin-bottom: 0; } h2 { margin-top: 48px; border-top: 1px solid #ddd; padding-top: 24px; }
.sub { color: #666; margin-top: 4px; }
blockquote { margin: 12px 0; padding: 8px 16px; background: #f5f3ee; border-left: 4px solid #c9a227; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 4px; }
.media { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; } figure img, figure video { max-width: 100%; max-height: 520px; display: block; }
figcaption { color: #555; font-size: 13px; max-width: 480px; }
code { background: #f0f0f0; padding: 1px 4px; border-radius: 3px; }
.missing { color: #8a5a00; }
";

fn is_numeric(cell: &str) -> bool {
    let c = cell.trim_end_matches(" %").replace(',', "");
    c.parse::<f64>().is_ok()
}

fn scene_section(html: &mut String, scene: &Scene, result: Option<&SceneResult>) {
    let _ = writeln!(html, "<section id=\"{}\">", esc(scene.name));
    let _ = writeln!(html, "<h2>{}</h2>", esc(scene.title));
    let _ = writeln!(html, "<blockquote><b>The video:</b> {}</blockquote>", esc(scene.claim));
    let Some(r) = result else {
        let _ = writeln!(
            html,
            "<p class=\"missing\">Not run yet: <code>approxlab scene {}</code> (about {} s quick, {} s full on 2 \
             cores).</p></section>",
            esc(scene.name),
            scene.quick_s,
            scene.full_s
        );
        return;
    };
    if let Some(reason) = &r.skipped {
        let _ = writeln!(html, "<p class=\"missing\">Skipped: {}</p></section>", esc(reason));
        return;
    }
    let _ = writeln!(
        html,
        "<p><b>approxlab measured:</b> {} <span class=\"sub\">({} budget: {}; {}; {}; scene took {:.0} s; \
         <code>{}</code>)</span></p>",
        esc(&r.headline),
        if r.quick { "quick" } else { "full" },
        esc(&r.budget),
        esc(&r.machine),
        esc(&r.date),
        r.wall_s,
        esc(&r.command)
    );
    for t in &r.tables {
        table_html(html, t);
    }
    if let Some(reference) = scene.reference {
        let _ = writeln!(html, "<p class=\"sub\">Published figure: {}</p>", esc(reference));
    }
    for note in &r.notes {
        let _ = writeln!(html, "<p>{}</p>", esc(note));
    }
    media_html(html, scene.name, &r.media);
    html.push_str("</section>\n");
}

fn table_html(html: &mut String, t: &SceneTable) {
    html.push_str("<table>");
    if !t.caption.is_empty() {
        let _ = write!(html, "<caption>{}</caption>", esc(&t.caption));
    }
    html.push_str("<tr>");
    for c in &t.columns {
        let _ = write!(html, "<th>{}</th>", esc(c));
    }
    html.push_str("</tr>\n");
    for row in &t.rows {
        html.push_str("<tr>");
        for cell in row {
            let class = if is_numeric(cell) { " class=\"n\"" } else { "" };
            let _ = write!(html, "<td{class}>{}</td>", esc(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

fn media_html(html: &mut String, scene_name: &str, media: &[Media]) {
    html.push_str("<div class=\"media\">\n");
    for m in media {
        let src = href(&format!("{}/{}", scene_name, m.src));
        match m.kind {
            MediaKind::Image => {
                let _ = writeln!(
                    html,
                    "<figure><a href=\"{src}\"><img src=\"{src}\" alt=\"{}\"></a><figcaption>{}</figcaption></figure>",
                    esc(&m.caption),
                    esc(&m.caption)
                );
            }
            MediaKind::Video => {
                let _ = writeln!(
                    html,
                    "<figure><video src=\"{src}\" controls muted loop autoplay playsinline preload=\"auto\"></video>\
                     <figcaption>{}</figcaption></figure>",
                    esc(&m.caption)
                );
            }
        }
    }
    html.push_str("</div>\n");
}

/// Rebuilds `out/index.html` from the scenes' results there; returns its path.
pub fn write(out: &Path) -> Result<PathBuf> {
    let results: Vec<Option<SceneResult>> = SCENES.iter().map(|s| read_result(out, s)).collect();
    let done = results.iter().flatten().filter(|r| r.skipped.is_none()).count();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>approxlab: Watching Neural Networks Learn, replayed</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(
        html,
        "<h1>Watching Neural Networks Learn, replayed</h1><p class=\"sub\">Every scene of the video \"Watching \
         Neural Networks Learn\" (Emergent Garden, 2023) trained again by approxlab {}: what the video shows, what \
         approxlab measured, the learned function against the truth, the learning as a video and the loss. {} of {} \
         scenes measured. <code>approxlab scenes --all</code> runs them all.</p>",
        env!("CARGO_PKG_VERSION"),
        done,
        SCENES.len()
    );
    html.push_str("<table><tr><th>scene</th><th>result</th><th>budget</th><th>took</th></tr>\n");
    for (scene, r) in SCENES.iter().zip(&results) {
        let (headline, budget, took) = match r {
            Some(r) if r.skipped.is_none() => (
                r.headline.clone(),
                format!("{}{}", r.budget, if r.quick { " (quick)" } else { "" }),
                format!("{:.0} s", r.wall_s),
            ),
            Some(_) => ("skipped".into(), "-".into(), "-".into()),
            None => ("not run yet".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(scene.name),
            esc(scene.name),
            esc(&headline),
            esc(&budget),
            esc(&took)
        );
    }
    html.push_str("</table>\n");
    for (scene, r) in SCENES.iter().zip(&results) {
        scene_section(&mut html, scene, r.as_ref());
    }
    html.push_str("</body></html>\n");
    let path = out.join("index.html");
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    approxlab_engine::checkpoint::atomic_write(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_paths() {
        assert_eq!(esc("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
        assert_eq!(href("mnist/fourier 8/compare.png"), "mnist/fourier%208/compare.png");
        assert!(is_numeric("1,234.5") && is_numeric("96.10 %") && !is_numeric("plain"));
    }

    #[test]
    fn lists_every_scene_and_says_how_to_run_the_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let index = write(dir.path()).unwrap();
        let html = std::fs::read_to_string(index).unwrap();
        for s in SCENES {
            assert!(html.contains(&format!("id=\"{}\"", s.name)), "{}", s.name);
            assert!(html.contains(&format!("approxlab scene {}", s.name)), "{}", s.name);
        }
        assert!(html.contains("0 of"));
    }
}
