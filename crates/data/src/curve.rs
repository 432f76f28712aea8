use std::borrow::Cow;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::io_reason;
use crate::expr::Expr;
use crate::fixed::{check_range, FixedSet};
use crate::{DataError, Dataset, EvalSet, Kind};

/// Default input interval of curves.
pub const CURVE_DOMAIN: (f64, f64) = (-PI, PI);
const DEFAULT_SAMPLES: usize = 300;
const EVAL_GRID: usize = 1000;
const EXPECTED_EXPR: &str = "an expression in x such as sin(3*x)";

/// The built-in 1-D targets, from the video and a few classic hard cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedCurve {
    Waves,
    Gauss,
    Cubic,
    Abs,
    FastWaves,
    Bumps,
    Kinks,
    Sine,
    /// -1 for x < 0 and 1 for x >= 0.
    Step,
    /// Rising ramps from -1 to 1 with period 2*pi/3 (three teeth over [-pi, pi]), 0 at x = 0.
    Sawtooth,
}

/// `(canonical name, short alias)` of every named curve; both are accepted, whitespace ignored.
pub const NAMED_CURVES: &[(&str, &str)] = &[
    ("sin(3x)+cos(2x)+sin(x)+cos(3x)", "waves"),
    ("2exp(-x^2)", "gauss"),
    ("x^3/5", "cubic"),
    ("abs(x)", "abs"),
    ("sin(6x)+cos(4x)+sin(2x)+cos(6x)", "fastwaves"),
    ("2abs(cos(2x))-1", "bumps"),
    ("-abs(x)/4+abs(2+x)-abs(2x+1)/2", "kinks"),
    ("sin(3x)", "sine"),
    ("step", "sign"),
    ("sawtooth", "saw"),
];

const ALL_NAMED: [NamedCurve; 10] = [
    NamedCurve::Waves,
    NamedCurve::Gauss,
    NamedCurve::Cubic,
    NamedCurve::Abs,
    NamedCurve::FastWaves,
    NamedCurve::Bumps,
    NamedCurve::Kinks,
    NamedCurve::Sine,
    NamedCurve::Step,
    NamedCurve::Sawtooth,
];

impl NamedCurve {
    /// Looks up a canonical name or alias, ignoring whitespace and case.
    pub fn from_name(s: &str) -> Option<NamedCurve> {
        let key: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        NAMED_CURVES.iter().position(|(n, a)| key == *n || key == *a).map(|i| ALL_NAMED[i])
    }

    fn index(self) -> usize {
        ALL_NAMED.iter().position(|&c| c == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        NAMED_CURVES[self.index()].0
    }

    pub fn alias(self) -> &'static str {
        NAMED_CURVES[self.index()].1
    }

    pub fn eval(self, x: f64) -> f64 {
        match self {
            NamedCurve::Waves => (3.0 * x).sin() + (2.0 * x).cos() + x.sin() + (3.0 * x).cos(),
            NamedCurve::Gauss => 2.0 * (-x * x).exp(),
            NamedCurve::Cubic => x.powi(3) / 5.0,
            NamedCurve::Abs => x.abs(),
            NamedCurve::FastWaves => (6.0 * x).sin() + (4.0 * x).cos() + (2.0 * x).sin() + (6.0 * x).cos(),
            NamedCurve::Bumps => 2.0 * (2.0 * x).cos().abs() - 1.0,
            NamedCurve::Kinks => -x.abs() / 4.0 + (2.0 + x).abs() - (2.0 * x + 1.0).abs() / 2.0,
            NamedCurve::Sine => (3.0 * x).sin(),
            NamedCurve::Step => {
                if x < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            NamedCurve::Sawtooth => {
                let t = x / (2.0 * PI / 3.0) + 0.5;
                2.0 * (t - t.floor()) - 1.0
            }
        }
    }
}

/// `kind = "curve"`: a 1-D function or a CSV of points.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveSpec {
    /// A named curve (see [`NAMED_CURVES`]) or an expression in `x`; default
    /// `sin(3x)+cos(2x)+sin(x)+cos(3x)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// CSV file of `x,y` rows (optional header line); excludes `target`, `samples` and `noise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// Input interval `[lo, hi]`; default `[-pi, pi]`, or the x range of the CSV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<[f64; 2]>,
    /// Number of random training points; default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Standard deviation of Gaussian noise added to training targets; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
}

enum Truth {
    Named(NamedCurve),
    Expr(Expr),
    /// CSV points: there is no function between them.
    Points,
}

impl Truth {
    fn eval(&self, x: f64) -> f64 {
        match self {
            Truth::Named(c) => c.eval(x),
            Truth::Expr(e) => e.eval(&[x]),
            Truth::Points => f64::NAN,
        }
    }
}

pub struct CurveDataset {
    name: String,
    domain: [(f64, f64); 1],
    truth: Truth,
    train: FixedSet,
    /// Noise-free grid; empty for CSV data, whose eval set is the points themselves.
    eval_inputs: Vec<f32>,
    eval_targets: Vec<f32>,
}

impl std::fmt::Debug for CurveDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveDataset").field("name", &self.name).field("points", &self.train.len()).finish()
    }
}

impl CurveDataset {
    pub fn build(spec: &CurveSpec, seed: u64) -> Result<CurveDataset, DataError> {
        if let Some(path) = &spec.csv {
            return Self::from_csv(spec, path);
        }
        let text = spec.target.clone().unwrap_or_else(|| NAMED_CURVES[0].0.to_string());
        let truth = match NamedCurve::from_name(&text) {
            Some(c) => Truth::Named(c),
            None => Truth::Expr(Expr::parse(&text, &["x"]).map_err(|reason| DataError::Expression {
                subject: "curve".into(),
                text: text.clone(),
                reason,
                expected: EXPECTED_EXPR.into(),
            })?),
        };
        let (lo, hi) = match spec.domain {
            Some([lo, hi]) => (lo, hi),
            None => CURVE_DOMAIN,
        };
        check_range("curve domain", lo, hi)?;
        let samples = spec.samples.unwrap_or(DEFAULT_SAMPLES);
        if samples == 0 {
            return Err(DataError::invalid("curve samples", "must be at least 1, got 0"));
        }
        let noise = spec.noise.unwrap_or(0.0);
        let normal = match Normal::new(0.0, noise) {
            Ok(n) if noise >= 0.0 && noise.is_finite() => n,
            _ => {
                return Err(DataError::invalid(
                    "curve noise",
                    format!("must be a finite standard deviation >= 0, got {noise:?}"),
                ))
            }
        };

        let not_finite = |x: f64| {
            DataError::invalid(
                format!("curve '{text}'"),
                format!("value is not finite at x = {x}; expected a function defined over the domain [{lo}, {hi}]"),
            )
        };
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut inputs = Vec::with_capacity(samples);
        let mut targets = Vec::with_capacity(samples);
        for _ in 0..samples {
            let x = lo + (hi - lo) * rng.gen::<f64>();
            let y = truth.eval(x);
            if !y.is_finite() {
                return Err(not_finite(x));
            }
            let y = if noise > 0.0 { y + normal.sample(&mut rng) } else { y };
            inputs.push(x as f32);
            targets.push(y as f32);
        }
        let mut eval_inputs = Vec::with_capacity(EVAL_GRID);
        let mut eval_targets = Vec::with_capacity(EVAL_GRID);
        for i in 0..EVAL_GRID {
            let x = lo + (hi - lo) * i as f64 / (EVAL_GRID - 1) as f64;
            let y = truth.eval(x);
            if !y.is_finite() {
                return Err(not_finite(x));
            }
            eval_inputs.push(x as f32);
            eval_targets.push(y as f32);
        }
        let label = match &truth {
            Truth::Named(c) => c.name().to_string(),
            _ => text.clone(),
        };
        Ok(CurveDataset {
            name: format!("curve {label}"),
            domain: [(lo, hi)],
            truth,
            train: FixedSet { inputs, targets, in_dims: 1, out_dims: 1 },
            eval_inputs,
            eval_targets,
        })
    }

    fn from_csv(spec: &CurveSpec, path: &Path) -> Result<CurveDataset, DataError> {
        let conflict = if spec.target.is_some() {
            Some("target")
        } else if spec.samples.is_some() {
            Some("samples")
        } else if spec.noise.is_some() {
            Some("noise")
        } else {
            None
        };
        if let Some(field) = conflict {
            return Err(DataError::invalid(
                "curve",
                format!("'{field}' cannot be combined with 'csv'; expected either a csv file or a target function"),
            ));
        }
        let (xs, ys) = load_xy_csv(path)?;
        let (lo, hi) = match spec.domain {
            Some([lo, hi]) => (lo, hi),
            None => xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x))),
        };
        if spec.domain.is_none() && lo >= hi {
            return Err(DataError::csv(
                path,
                format!("all x values are equal ({lo}); expected at least two distinct x"),
            ));
        }
        check_range("curve domain", lo, hi)?;
        Ok(CurveDataset {
            name: format!("curve csv {}", path.display()),
            domain: [(lo, hi)],
            truth: Truth::Points,
            train: FixedSet {
                inputs: xs.iter().map(|&x| x as f32).collect(),
                targets: ys.iter().map(|&y| y as f32).collect(),
                in_dims: 1,
                out_dims: 1,
            },
            eval_inputs: Vec::new(),
            eval_targets: Vec::new(),
        })
    }

    /// The named curve, if the target is one.
    pub fn named(&self) -> Option<NamedCurve> {
        match self.truth {
            Truth::Named(c) => Some(c),
            _ => None,
        }
    }

    /// The user expression, if the target is one.
    pub fn expression(&self) -> Option<&str> {
        match &self.truth {
            Truth::Expr(e) => Some(e.text()),
            _ => None,
        }
    }
}

impl Dataset for CurveDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        1
    }
    fn output_dims(&self) -> usize {
        1
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        Kind::Curve
    }
    fn len(&self) -> Option<usize> {
        Some(self.train.len())
    }
    fn fill_batch(&self, rng: &mut rand_pcg::Pcg64, inputs: &mut [f32], targets: &mut [f32]) {
        self.train.fill_batch(rng, inputs, targets)
    }
    fn training_points(&self) -> Option<(&[f32], &[f32])> {
        Some((&self.train.inputs, &self.train.targets))
    }
    fn eval_set(&self) -> EvalSet<'_> {
        if self.eval_inputs.is_empty() {
            EvalSet { inputs: Cow::Borrowed(&self.train.inputs), targets: Cow::Borrowed(&self.train.targets) }
        } else {
            EvalSet { inputs: Cow::Borrowed(&self.eval_inputs), targets: Cow::Borrowed(&self.eval_targets) }
        }
    }
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool {
        if matches!(self.truth, Truth::Points) {
            return false;
        }
        for (o, &x) in out.iter_mut().zip(inputs) {
            *o = self.truth.eval(x as f64) as f32;
        }
        true
    }
}

/// Reads `x,y` rows. A first row without any number is taken as a header; `#` starts a comment.
pub(crate) fn load_xy_csv(path: &Path) -> Result<(Vec<f64>, Vec<f64>), DataError> {
    let bytes =
        std::fs::read(path).map_err(|e| DataError::csv(path, format!("cannot read file: {}", io_reason(&e))))?;
    let mut reader = crate::table::csv_reader(&bytes, b',');
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut first = true;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
            DataError::csv(path, format!("{line}{e}; expected comma-separated text"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let is_header = first && record.iter().all(|f| f.parse::<f64>().is_err());
        let was_first = std::mem::replace(&mut first, false);
        if record.len() != 2 {
            let what = if was_first && is_header { "header" } else { "row" };
            return Err(DataError::csv(
                path,
                format!("line {line}: {what} has {} columns; expected 2 columns (x, y) on every line", record.len()),
            ));
        }
        if is_header {
            continue;
        }
        let mut pair = [0.0; 2];
        for (col, (field, slot)) in record.iter().zip(pair.iter_mut()).enumerate() {
            let v: f64 = field.parse().map_err(|_| {
                DataError::csv(
                    path,
                    format!("line {line}, column {}: '{field}' is not a number; expected two numbers x,y", col + 1),
                )
            })?;
            if !v.is_finite() {
                return Err(DataError::csv(
                    path,
                    format!("line {line}, column {}: value is {v}; expected finite numbers", col + 1),
                ));
            }
            *slot = v;
        }
        xs.push(pair[0]);
        ys.push(pair[1]);
    }
    if xs.is_empty() {
        return Err(DataError::csv(path, "no data rows; expected lines of two numbers x,y"));
    }
    Ok((xs, ys))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical names are also valid user expressions with the same meaning, so a user who
    /// edits one (say `sin(3x)` to `sin(5x)`) gets what the notation suggests.
    #[test]
    fn canonical_names_parse_to_the_same_function() {
        for (i, (name, _)) in NAMED_CURVES.iter().enumerate() {
            let Ok(e) = Expr::parse(name, &["x"]) else {
                assert!(matches!(ALL_NAMED[i], NamedCurve::Step | NamedCurve::Sawtooth), "{name}");
                continue;
            };
            for k in 0..=40 {
                let x = -PI + 2.0 * PI * k as f64 / 40.0;
                let (a, b) = (e.eval(&[x]), ALL_NAMED[i].eval(x));
                assert!((a - b).abs() < 1e-12, "{name} at {x}: {a} vs {b}");
            }
        }
    }
}
