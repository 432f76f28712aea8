//! The curse of dimensionality scene: how many features a full d-dimensional Fourier series of order N has,
//! against per-dimension Fourier features, counted by building the engine's encodings (so the table shows what
//! approxlab really does, and where `fourier_series` refuses) and by the formula where no encoding exists.

use super::{Ctx, Media, SceneResult, SceneTable};
use anyhow::{anyhow, Result};
use approxlab_engine::encoding::{BuildContext, EncodingConfig};
use approxlab_engine::model::ModelConfig;
use approxlab_view::{plot_log_curves, write_png_atomic, LogPlot, LossSeries};

const ORDERS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// Features of `encoding` (CLI form) on `dims` inputs under the default feature limit, or its refusal.
fn built(encoding: &str, dims: usize) -> Result<usize, String> {
    let config = EncodingConfig::parse(encoding).map_err(|e| e.to_string())?;
    let ctx = BuildContext { input_dims: dims, seed: 0, max_features: ModelConfig::default().max_features };
    config.build(&ctx).map(|e| e.output_dims()).map_err(|e| e.to_string())
}

/// `(2N+1)^d - 1`: every product of one of 1, cos kx, sin kx (k = 1..N) per dimension, less the constant.
fn series_terms(order: usize, dims: u32) -> f64 {
    (2.0 * order as f64 + 1.0).powi(dims as i32) - 1.0
}

fn thousands(n: f64) -> String {
    if n >= 1e15 {
        return format!("{n:.2e}");
    }
    let digits = format!("{}", n.round() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn scene(ctx: &Ctx<'_>) -> Result<SceneResult> {
    let (table, first_refusal) = count_table()?;
    write_plot(&ctx.dir.join("terms.png"))?;
    let limit = ModelConfig::default().max_features;
    let mut result = ctx.base(format!(
        "order 64: {} terms in 2-D, {} in 3-D (refused above {} features), {} per-dimension",
        thousands(series_terms(64, 2)),
        thousands(series_terms(64, 3)),
        thousands(limit as f64),
        thousands(2.0 * 129.0)
    ));
    result.tables.push(table);
    result.media.push(Media::image("terms.png", "features against order (log scale)"));
    if let Some(refusal) = first_refusal {
        result.notes.push(format!("Where approxlab refuses: {refusal}"));
    }
    result.notes.push(
        "The full series is what makes the 2-D Fourier series exact; per-dimension features drop the products \
         between dimensions, so they grow linearly with the dimension and the image fits stay affordable."
            .into(),
    );
    Ok(result)
}

/// The table of feature counts by order and dimension, and the first refusal of the engine's feature limit.
fn count_table() -> Result<(SceneTable, Option<String>)> {
    let mut rows = Vec::new();
    let mut first_refusal: Option<String> = None;
    for &n in &ORDERS {
        let mut cells = vec![n.to_string()];
        // 1-D: sin kx, cos kx for k = 1..N.
        cells.push(thousands(2.0 * n as f64));
        for dims in [2, 3] {
            cells.push(match built(&format!("fourier-series:{n}"), dims) {
                Ok(count) => {
                    assert_eq!(count as f64, series_terms(n, dims as u32), "the engine's term count is the formula's");
                    thousands(count as f64)
                }
                Err(e) => {
                    first_refusal.get_or_insert(format!("order {n}, {dims} inputs: {e}"));
                    format!("{} (refused)", thousands(series_terms(n, dims as u32)))
                }
            });
        }
        for dims in [4, 6] {
            cells.push(thousands(series_terms(n, dims)));
        }
        for dims in [2, 784] {
            let count =
                built(&format!("fourier:{n}"), dims).map_err(|e| anyhow!("fourier:{n} on {dims} inputs: {e}"))?;
            cells.push(thousands(count as f64));
        }
        rows.push(cells);
    }
    let columns = [
        "order N",
        "1-D series",
        "2-D series",
        "3-D series",
        "4-D series",
        "6-D series",
        "per-dimension, 2 inputs",
        "per-dimension, 784 inputs (MNIST)",
    ];
    let table = SceneTable {
        caption: "features (terms) by order and input dimension; 2-D and 3-D counted by building approxlab's \
                  fourier_series encoding, 4-D and 6-D by the formula (2N+1)^d - 1, per-dimension by building fourier"
            .into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    };
    Ok((table, first_refusal))
}

/// Features against order on log axes: the series of each dimension and the per-dimension features.
fn write_plot(path: &std::path::Path) -> Result<()> {
    let series: Vec<LossSeries> = [1u32, 2, 3, 4, 6]
        .iter()
        .map(|&d| LossSeries {
            label: format!("{d}-D series"),
            points: ORDERS
                .iter()
                .map(|&n| (n as f64, if d == 1 { 2.0 * n as f64 } else { series_terms(n, d) }))
                .collect(),
        })
        .chain(std::iter::once(LossSeries {
            label: "per-dimension, 2 inputs".into(),
            points: ORDERS.iter().map(|&n| (n as f64, 2.0 * (2.0 * n as f64 + 1.0))).collect(),
        }))
        .collect();
    let plot = plot_log_curves(
        &series,
        &LogPlot {
            title: "Fourier features by order",
            x_label: "order N",
            y_label: "features",
            width: 900,
            height: 520,
        },
    )
    .map_err(|e| anyhow!("{e}"))?;
    write_png_atomic(path, &plot).map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_formula_and_the_engine() {
        assert_eq!(series_terms(2, 2), 24.0);
        assert_eq!(built("fourier-series:2", 2), Ok(24));
        // The video's MNIST figure: order 8 on 784 inputs gives 13,328 features.
        assert_eq!(built("fourier:8", 784), Ok(13_328));
        assert!(built("fourier-series:64", 3).unwrap_err().contains("max_features"));
        assert_eq!(thousands(2_248_090.0), "2,248,090");
        assert_eq!(thousands(999.0), "999");
    }
}
