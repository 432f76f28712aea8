use std::borrow::Cow;
use std::f64::consts::{FRAC_PI_2, TAU};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::fixed::{check_range, FixedSet};
use crate::{mse, DataError, Dataset, EvalSet, Kind, Metrics, EVAL_POINTS, EVAL_SEED};

const EXPECTED_EXPR: &str = "an expression in u and v such as cos(u)*sin(v)";
const MAX_SAMPLES: usize = 100_000_000;

/// Cortie's spiral shell constants (r, a, b, c, d, e, f, h).
const SHELL: [f64; 8] = [1.0, 1.25, 1.25, 1.0, 3.5, 0.0, 0.17, -1.0];
/// Scale of the exponential that draws the shell's u: most of the area is near the mouth (u = 0).
const SHELL_U_SCALE: f64 = 7.0;
const SHELL_U_MIN: f64 = -25.0;

/// The built-in surfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurfaceShape {
    /// `(R cos u cos v, R cos u sin v, R sin u)`, u in [-pi/2, pi/2], v in [0, 2pi], R = 3 by
    /// default; sampled uniformly by area.
    Sphere,
    /// Cortie's spiral shell, u in [-25, 0], v in [-2pi, 2pi]; u = -Exponential(scale 7) clipped.
    Shell,
    /// `((R + r cos v) cos u, (R + r cos v) sin u, r sin v)`, u, v in [0, 2pi], R = 2, r = 0.8 by
    /// default; sampled uniformly by area.
    Torus,
}

impl SurfaceShape {
    pub fn name(self) -> &'static str {
        match self {
            SurfaceShape::Sphere => "sphere",
            SurfaceShape::Shell => "shell",
            SurfaceShape::Torus => "torus",
        }
    }

    pub fn from_name(s: &str) -> Option<SurfaceShape> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sphere" => Some(SurfaceShape::Sphere),
            "shell" => Some(SurfaceShape::Shell),
            "torus" => Some(SurfaceShape::Torus),
            _ => None,
        }
    }

    /// The point at `(u, v)` with the default parameters.
    pub fn point(self, u: f64, v: f64) -> [f64; 3] {
        match self {
            SurfaceShape::Sphere => sphere(3.0, u, v),
            SurfaceShape::Shell => shell(u, v),
            SurfaceShape::Torus => torus(2.0, 0.8, u, v),
        }
    }
}

fn sphere(radius: f64, u: f64, v: f64) -> [f64; 3] {
    [radius * u.cos() * v.cos(), radius * u.cos() * v.sin(), radius * u.sin()]
}

fn shell(u: f64, v: f64) -> [f64; 3] {
    let [r, a, b, c, d, e, f, h] = SHELL;
    let g = r * (f * u).exp();
    let ring = d + a * v.cos();
    [g * ring * (c * u).cos(), g * ring * (c * u).sin(), g * (-1.4 * e + b * v.sin()) + h]
}

fn torus(major: f64, minor: f64, u: f64, v: f64) -> [f64; 3] {
    let ring = major + minor * v.cos();
    [ring * u.cos(), ring * u.sin(), minor * v.sin()]
}

/// `kind = "surface"`: `(u, v) -> (x, y, z)`. Either `shape` or all of `x`, `y`, `z`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<SurfaceShape>,
    /// Expressions in `u` and `v` for a user surface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<String>,
    /// User surfaces: the u interval, default `[0, 2pi]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<[f64; 2]>,
    /// User surfaces: the v interval, default `[0, 2pi]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<[f64; 2]>,
    /// Training points; default 1000 (shell: 3000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Sphere radius, default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f64>,
    /// Torus: distance from the centre to the tube's centre, default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_radius: Option<f64>,
    /// Torus: radius of the tube, default 0.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_radius: Option<f64>,
}

impl SurfaceSpec {
    pub fn shape(shape: SurfaceShape) -> SurfaceSpec {
        SurfaceSpec { shape: Some(shape), ..SurfaceSpec::default() }
    }
}

enum Param {
    Sphere { radius: f64 },
    Shell,
    Torus { major: f64, minor: f64 },
    Custom { xyz: [Expr; 3] },
}

impl Param {
    fn point(&self, u: f64, v: f64) -> [f64; 3] {
        match self {
            Param::Sphere { radius } => sphere(*radius, u, v),
            Param::Shell => shell(u, v),
            Param::Torus { major, minor } => torus(*major, *minor, u, v),
            Param::Custom { xyz } => xyz.each_ref().map(|e| e.eval(&[u, v])),
        }
    }

    fn draw(&self, rng: &mut rand_pcg::Pcg64, domain: &[(f64, f64); 2]) -> (f64, f64) {
        let [(u0, u1), (v0, v1)] = *domain;
        match self {
            Param::Sphere { .. } => {
                // Area element cos(u) du dv: sin(u) is uniform.
                let s: f64 = rng.gen();
                ((2.0 * s - 1.0).clamp(-1.0, 1.0).asin(), v0 + (v1 - v0) * rng.gen::<f64>())
            }
            Param::Shell => {
                let e = Exp::new(1.0 / SHELL_U_SCALE).map(|d| d.sample(rng)).unwrap_or(0.0);
                ((-e).max(SHELL_U_MIN), v0 + (v1 - v0) * rng.gen::<f64>())
            }
            Param::Torus { major, minor } => {
                // Area element (R + r cos v) du dv: accept v with probability proportional to it.
                let u = u0 + (u1 - u0) * rng.gen::<f64>();
                loop {
                    let v = v0 + (v1 - v0) * rng.gen::<f64>();
                    if rng.gen::<f64>() * (major + minor) <= major + minor * v.cos() {
                        return (u, v);
                    }
                }
            }
            Param::Custom { .. } => (u0 + (u1 - u0) * rng.gen::<f64>(), v0 + (v1 - v0) * rng.gen::<f64>()),
        }
    }
}

pub struct SurfaceDataset {
    name: String,
    domain: [(f64, f64); 2],
    param: Param,
    train: FixedSet,
    eval: FixedSet,
}

impl std::fmt::Debug for SurfaceDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurfaceDataset").field("name", &self.name).field("points", &self.train.len()).finish()
    }
}

fn positive(subject: &str, value: f64) -> Result<f64, DataError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(DataError::invalid(subject, format!("must be a finite number > 0, got {value:?}")))
    }
}

/// The `(u0, u1), (v0, v1)` parameter intervals.
type UvDomain = [(f64, f64); 2];

/// Rejects fields that do not fit together or do not apply to the chosen shape.
fn check_fields(spec: &SurfaceSpec) -> Result<(), DataError> {
    let any_expr = [&spec.x, &spec.y, &spec.z].iter().any(|e| e.is_some());
    let only_for = |field: &str, value_set: bool, shape: &str| {
        if value_set {
            Err(DataError::invalid(format!("surface {field}"), format!("only applies to shape = \"{shape}\"")))
        } else {
            Ok(())
        }
    };
    let shape = spec.shape;
    if shape.is_some() && any_expr {
        return Err(DataError::invalid(
            "surface",
            "both a shape and x/y/z expressions were given; expected one of the two",
        ));
    }
    if shape != Some(SurfaceShape::Sphere) {
        only_for("radius", spec.radius.is_some(), "sphere")?;
    }
    if shape != Some(SurfaceShape::Torus) {
        only_for("major_radius", spec.major_radius.is_some(), "torus")?;
        only_for("minor_radius", spec.minor_radius.is_some(), "torus")?;
    }
    if shape.is_some() && (spec.u.is_some() || spec.v.is_some()) {
        return Err(DataError::invalid(
            "surface u/v",
            "the parameter intervals of built-in shapes are fixed; expected u and v only with x/y/z expressions",
        ));
    }
    Ok(())
}

/// The parametrization of `spec`, its `(u, v)` domain and its label for the dataset name.
fn parametrization(spec: &SurfaceSpec) -> Result<(Param, UvDomain, String), DataError> {
    Ok(match spec.shape {
        Some(SurfaceShape::Sphere) => {
            let radius = positive("surface radius", spec.radius.unwrap_or(3.0))?;
            (Param::Sphere { radius }, [(-FRAC_PI_2, FRAC_PI_2), (0.0, TAU)], "sphere".to_string())
        }
        Some(SurfaceShape::Shell) => (Param::Shell, [(SHELL_U_MIN, 0.0), (-TAU, TAU)], "shell".to_string()),
        Some(SurfaceShape::Torus) => {
            let major = positive("surface major_radius", spec.major_radius.unwrap_or(2.0))?;
            let minor = positive("surface minor_radius", spec.minor_radius.unwrap_or(0.8))?;
            if minor >= major {
                return Err(DataError::invalid(
                    "surface torus",
                    format!("minor_radius ({minor:?}) must be less than major_radius ({major:?})"),
                ));
            }
            (Param::Torus { major, minor }, [(0.0, TAU), (0.0, TAU)], "torus".to_string())
        }
        None => custom_parametrization(spec)?,
    })
}

/// A user surface from the x, y, z expressions and the u, v intervals.
fn custom_parametrization(spec: &SurfaceSpec) -> Result<(Param, UvDomain, String), DataError> {
    let mut parsed = Vec::with_capacity(3);
    for (name, e) in ["x", "y", "z"].iter().zip([&spec.x, &spec.y, &spec.z]) {
        let Some(text) = e else {
            return Err(DataError::invalid(
                "surface",
                format!(
                    "missing '{name}'; expected shape = \"sphere\" | \"shell\" | \"torus\" or all of x, y, z as {EXPECTED_EXPR}"
                ),
            ));
        };
        parsed.push(Expr::parse(text, &["u", "v"]).map_err(|reason| DataError::Expression {
            subject: format!("surface {name}"),
            text: text.clone(),
            reason,
            expected: EXPECTED_EXPR.into(),
        })?);
    }
    let [u0, u1] = spec.u.unwrap_or([0.0, TAU]);
    let [v0, v1] = spec.v.unwrap_or([0.0, TAU]);
    check_range("surface u", u0, u1)?;
    check_range("surface v", v0, v1)?;
    let label = format!("({}, {}, {})", parsed[0].text(), parsed[1].text(), parsed[2].text());
    let xyz: [Expr; 3] = match parsed.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("three expressions were parsed"),
    };
    Ok((Param::Custom { xyz }, [(u0, u1), (v0, v1)], label))
}

fn sample_count(spec: &SurfaceSpec) -> Result<usize, DataError> {
    let default_samples = if spec.shape == Some(SurfaceShape::Shell) { 3000 } else { 1000 };
    let samples = spec.samples.unwrap_or(default_samples);
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(DataError::invalid(
            "surface samples",
            format!("must be between 1 and {MAX_SAMPLES}, got {samples}"),
        ));
    }
    Ok(samples)
}

/// `n` points drawn with `seed`; a non-finite point is an error naming the surface `label`.
fn sample_points(param: &Param, domain: &UvDomain, label: &str, seed: u64, n: usize) -> Result<FixedSet, DataError> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut inputs = Vec::with_capacity(2 * n);
    let mut targets = Vec::with_capacity(3 * n);
    for _ in 0..n {
        let (u, v) = param.draw(&mut rng, domain);
        let p = param.point(u, v);
        if p.iter().any(|c| !c.is_finite()) {
            return Err(DataError::invalid(
                format!("surface {label}"),
                format!("point is not finite at u = {u}, v = {v}; expected a surface defined over the whole domain"),
            ));
        }
        inputs.extend_from_slice(&[u as f32, v as f32]);
        targets.extend(p.iter().map(|&c| c as f32));
    }
    Ok(FixedSet { inputs, targets, in_dims: 2, out_dims: 3 })
}

impl SurfaceDataset {
    pub fn build(spec: &SurfaceSpec, seed: u64) -> Result<SurfaceDataset, DataError> {
        check_fields(spec)?;
        let (param, domain, label) = parametrization(spec)?;
        let samples = sample_count(spec)?;
        let train = sample_points(&param, &domain, &label, seed, samples)?;
        let eval = sample_points(&param, &domain, &label, EVAL_SEED, EVAL_POINTS)?;
        Ok(SurfaceDataset { name: format!("surface {label}"), domain, param, train, eval })
    }
}

impl Dataset for SurfaceDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        2
    }
    fn output_dims(&self) -> usize {
        3
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        Kind::Surface
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
        EvalSet { inputs: Cow::Borrowed(&self.eval.inputs), targets: Cow::Borrowed(&self.eval.targets) }
    }
    fn truth(&self, inputs: &[f32], out: &mut [f32]) -> bool {
        for (p, o) in inputs.chunks_exact(2).zip(out.chunks_exact_mut(3)) {
            let q = self.param.point(p[0] as f64, p[1] as f64);
            for (a, b) in o.iter_mut().zip(q) {
                *a = b as f32;
            }
        }
        true
    }
    fn metrics(&self, pred: &[f32], target: &[f32]) -> Metrics {
        let m = mse(pred, target);
        Metrics { mse: m, psnr: None, mean_sq_dist: Some(3.0 * m), accuracy: None }
    }
}
