use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::curve::{CurveDataset, CurveSpec};
use crate::image_data::{ImageDataset, ImageSpec};
use crate::mandelbrot::{MandelbrotDataset, MandelbrotSpec, MandelbrotTarget};
use crate::mnist::{MnistDataset, MnistSpec};
use crate::surface::{SurfaceDataset, SurfaceShape, SurfaceSpec};
use crate::table::{TableDataset, TableSpec};
use crate::{DataError, Dataset};

/// Every command-line form of a data set, with a few words on it: the parser's error, the CLI's help and the
/// README's table list these.
pub const FORMS: &[(&str, &str)] = &[
    ("mandelbrot[:smooth|periodic]", "computed in f64"),
    ("image:PATH", "PNG or JPEG, gray or RGB"),
    ("curve:NAME_OR_EXPR", "a named curve or any expression in x"),
    ("curve:csv:PATH", "x,y rows"),
    ("surface:sphere|shell|torus", ""),
    ("mnist:DIR", "the four IDX files"),
    ("csv:PATH", "a table, with --inputs, --targets, --task"),
];

/// The forms of [`FORMS`], comma-separated, with a choice of names spelled out (`surface:sphere, surface:shell`).
pub fn spec_usages() -> String {
    let spell_out = |usage: &str| match usage.split_once(':') {
        Some((kind, names)) if names.contains('|') && !usage.contains('[') => {
            names.split('|').map(|name| format!("{kind}:{name}")).collect::<Vec<_>>().join(", ")
        }
        _ => usage.to_string(),
    };
    FORMS.iter().map(|(usage, _)| spell_out(usage)).collect::<Vec<_>>().join(", ")
}

/// A data set description, as found in a TOML config (`kind = "..."` plus the fields of the
/// variant's spec) or given on the command line (see [`DataSpec::parse`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSpec {
    Curve(CurveSpec),
    Image(ImageSpec),
    Surface(SurfaceSpec),
    Mandelbrot(MandelbrotSpec),
    Mnist(MnistSpec),
    /// `kind = "csv"` (or `"table"`).
    #[serde(rename = "csv", alias = "table")]
    Table(TableSpec),
}

impl DataSpec {
    /// Parses the CLI forms `mandelbrot`, `mandelbrot:smooth`, `mandelbrot:periodic`,
    /// `image:PATH`, `curve` (the default curve), `curve:NAME_OR_EXPR`, `curve:csv:PATH` and
    /// `surface:sphere|shell|torus`, `mnist:DIR` and `csv:PATH`. Every other field takes its
    /// default.
    pub fn parse(cli: &str) -> Result<DataSpec, DataError> {
        let s = cli.trim();
        let (head, rest) = match s.split_once(':') {
            Some((h, r)) => (h, Some(r.trim())),
            None => (s, None),
        };
        let missing = |what: &str, form: &str| {
            DataError::invalid(format!("data set '{s}'"), format!("missing {what}; expected {form}"))
        };
        match head.trim().to_ascii_lowercase().as_str() {
            "mandelbrot" => {
                let target = match rest.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("smooth") => MandelbrotTarget::Smooth,
                    Some("periodic") => MandelbrotTarget::Periodic,
                    Some(other) => {
                        return Err(DataError::invalid(
                            format!("data set '{s}'"),
                            format!("unknown mandelbrot target '{other}'; expected smooth or periodic"),
                        ))
                    }
                };
                Ok(DataSpec::Mandelbrot(MandelbrotSpec { target, ..MandelbrotSpec::default() }))
            }
            "image" => match rest {
                Some(path) if !path.is_empty() => Ok(DataSpec::Image(ImageSpec::new(path))),
                _ => Err(missing("the file", "image:PATH")),
            },
            "curve" => match rest {
                None => Ok(DataSpec::Curve(CurveSpec::default())),
                Some("") => Err(missing("the target", "curve:NAME_OR_EXPR or curve:csv:PATH")),
                Some(r) => match r.strip_prefix("csv:") {
                    Some(path) if !path.trim().is_empty() => {
                        Ok(DataSpec::Curve(CurveSpec { csv: Some(PathBuf::from(path.trim())), ..CurveSpec::default() }))
                    }
                    Some(_) => Err(missing("the file", "curve:csv:PATH")),
                    None => Ok(DataSpec::Curve(CurveSpec { target: Some(r.to_string()), ..CurveSpec::default() })),
                },
            },
            "surface" => match rest.and_then(SurfaceShape::from_name) {
                Some(shape) => Ok(DataSpec::Surface(SurfaceSpec::shape(shape))),
                None => Err(DataError::invalid(
                    format!("data set '{s}'"),
                    format!(
                        "unknown surface '{}'; expected surface:sphere, surface:shell or surface:torus",
                        rest.unwrap_or("")
                    ),
                )),
            },
            "mnist" => match rest {
                Some(dir) if !dir.is_empty() => Ok(DataSpec::Mnist(MnistSpec::new(dir))),
                _ => Err(missing("the directory of the IDX files", "mnist:DIR")),
            },
            "csv" | "table" => match rest {
                Some(path) if !path.is_empty() => Ok(DataSpec::Table(TableSpec::new(path))),
                _ => Err(missing("the file", "csv:PATH")),
            },
            _ => Err(DataError::UnknownKind { given: s.to_string(), known: spec_usages() }),
        }
    }

    /// Validates the spec and builds the data set; `seed` fixes every random choice.
    pub fn build(&self, seed: u64) -> Result<Box<dyn Dataset>, DataError> {
        Ok(match self {
            DataSpec::Curve(s) => Box::new(CurveDataset::build(s, seed)?),
            DataSpec::Image(s) => Box::new(ImageDataset::load(s)?),
            DataSpec::Surface(s) => Box::new(SurfaceDataset::build(s, seed)?),
            DataSpec::Mandelbrot(s) => Box::new(MandelbrotDataset::build(s, seed)?),
            DataSpec::Mnist(s) => Box::new(MnistDataset::load(s)?),
            DataSpec::Table(s) => Box::new(TableDataset::load(s, seed)?),
        })
    }
}
