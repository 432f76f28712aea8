//! Tabular CSV data of any width: regression on numeric target columns, or classification on one
//! column of labels.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::io_reason;
use crate::fixed::FixedSet;
use crate::{one_hot, DataError, Dataset, EvalSet, Kind};

/// Most classes a classification target column may have.
pub const MAX_CLASSES: usize = 1000;
/// Default fraction of the rows held out for validation.
pub const TABLE_VALIDATION: f64 = 0.2;
/// The domain is the min/max box of the (standardized) training inputs widened by this fraction
/// of its width on each side (by 0.5 for a constant column).
const DOMAIN_PAD: f64 = 0.05;

/// One column selector: a 0-based index, or a string that is a header name, a 0-based index
/// (`"3"`) or an inclusive range of indices (`"0-3"`). Header names win over the other readings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

/// One or several column selectors: `"y"`, `3`, `"0-3"` or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Columns {
    List(Vec<Column>),
    One(Column),
}

const COLUMN_EXPECTED: &str = "a column name, a 0-based index or a range such as \"0-3\"";

struct ColumnVisitor;

impl<'de> serde::de::Visitor<'de> for ColumnVisitor {
    type Value = Column;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(COLUMN_EXPECTED)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Column, E> {
        usize::try_from(v).map(Column::Index).map_err(|_| E::custom(format!("column index {v} is too large")))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Column, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::custom(format!("column index {v} is negative; expected 0-based indices >= 0"))),
        }
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Column, E> {
        Ok(Column::Name(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Column {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Column, D::Error> {
        d.deserialize_any(ColumnVisitor)
    }
}

struct ColumnsVisitor;

impl<'de> serde::de::Visitor<'de> for ColumnsVisitor {
    type Value = Columns;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{COLUMN_EXPECTED}, or a list of them")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Columns, E> {
        ColumnVisitor.visit_u64(v).map(Columns::One)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Columns, E> {
        ColumnVisitor.visit_i64(v).map(Columns::One)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Columns, E> {
        ColumnVisitor.visit_str(v).map(Columns::One)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Columns, A::Error> {
        let mut v = Vec::new();
        while let Some(c) = seq.next_element::<Column>()? {
            v.push(c);
        }
        Ok(Columns::List(v))
    }
}

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Columns, D::Error> {
        d.deserialize_any(ColumnsVisitor)
    }
}

impl Columns {
    fn items(&self) -> &[Column] {
        match self {
            Columns::List(v) => v,
            Columns::One(c) => std::slice::from_ref(c),
        }
    }
}

/// What the target columns are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableTask {
    /// Numeric targets, learned as they are (or standardized with `standardize_targets`).
    #[default]
    Regression,
    /// One target column of labels (integers or strings), one class per distinct label in sorted
    /// order (numeric order when every label is an integer), targets one-hot.
    Classification,
}

/// Whether the first row names the columns. TOML: `"auto"`, `true` or `false`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HeaderRaw", into = "HeaderRaw")]
pub enum HeaderMode {
    /// The first row is a header when one of its fields is not a number while the second row
    /// has a number in that column (with a single row: when any field is not a number). So a
    /// column of string class labels does not make the first data row a header.
    #[default]
    Auto,
    Yes,
    No,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum HeaderRaw {
    Bool(bool),
    Text(String),
}

impl TryFrom<HeaderRaw> for HeaderMode {
    type Error = String;
    fn try_from(raw: HeaderRaw) -> Result<Self, String> {
        match raw {
            HeaderRaw::Bool(true) => Ok(HeaderMode::Yes),
            HeaderRaw::Bool(false) => Ok(HeaderMode::No),
            HeaderRaw::Text(t) => match t.to_ascii_lowercase().as_str() {
                "auto" => Ok(HeaderMode::Auto),
                "true" | "yes" => Ok(HeaderMode::Yes),
                "false" | "no" => Ok(HeaderMode::No),
                _ => Err(format!("unknown header setting '{t}'; expected \"auto\", true or false")),
            },
        }
    }
}

impl From<HeaderMode> for HeaderRaw {
    fn from(h: HeaderMode) -> Self {
        match h {
            HeaderMode::Auto => HeaderRaw::Text("auto".into()),
            HeaderMode::Yes => HeaderRaw::Bool(true),
            HeaderMode::No => HeaderRaw::Bool(false),
        }
    }
}

/// `kind = "csv"` (alias `"table"`): rows of a CSV file, some columns inputs, others targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub path: PathBuf,
    /// Input columns; default: every column that is not a target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Columns>,
    /// Target columns; default: the last column. Classification takes exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Columns>,
    #[serde(default)]
    pub task: TableTask,
    #[serde(default)]
    pub header: HeaderMode,
    /// Standardize each input column to zero mean and unit variance over the training split
    /// (a constant column is only centred); default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize: Option<bool>,
    /// Regression: standardize the target columns the same way; default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardize_targets: Option<bool>,
    /// Fraction of the rows held out for validation, in [0, 1), chosen by a shuffle seeded with
    /// the build seed; default 0.2. With no validation rows the eval set is the training set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<f64>,
    /// Field separator, one ASCII character; default ',' (a tab for `.tsv` files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
}

impl TableSpec {
    pub fn new(path: impl Into<PathBuf>) -> TableSpec {
        TableSpec {
            path: path.into(),
            inputs: None,
            targets: None,
            task: TableTask::Regression,
            header: HeaderMode::Auto,
            standardize: None,
            standardize_targets: None,
            validation: None,
            delimiter: None,
        }
    }
}

struct Rows {
    inputs: Vec<f32>,
    targets: Vec<f32>,
}

pub struct TableDataset {
    name: String,
    task: TableTask,
    input_names: Vec<String>,
    target_names: Vec<String>,
    class_names: Option<Vec<String>>,
    input_scaling: Option<Vec<(f64, f64)>>,
    target_scaling: Option<Vec<(f64, f64)>>,
    domain: Vec<(f64, f64)>,
    train: FixedSet,
    validation: Rows,
}

impl std::fmt::Debug for TableDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableDataset")
            .field("name", &self.name)
            .field("inputs", &self.input_names)
            .field("targets", &self.target_names)
            .finish()
    }
}

fn describe(names: &[String], c: usize) -> String {
    format!("column '{}' (index {c})", names[c])
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// Resolves column selectors against the header names (or indices) of `width` columns.
fn resolve(path: &Path, field: &str, sel: &Columns, names: &[String]) -> Result<Vec<usize>, DataError> {
    let width = names.len();
    let out_of_range = |i: usize| {
        DataError::csv(
            path,
            format!("{field}: column index {i} is out of range; expected 0 to {} ({width} columns)", width - 1),
        )
    };
    let mut out = Vec::new();
    for item in sel.items() {
        match item {
            Column::Index(i) if *i < width => out.push(*i),
            Column::Index(i) => return Err(out_of_range(*i)),
            Column::Name(n) => {
                let t = n.trim();
                if let Some(i) = names.iter().position(|h| h == t) {
                    out.push(i);
                } else if let Ok(i) = t.parse::<usize>() {
                    if i >= width {
                        return Err(out_of_range(i));
                    }
                    out.push(i);
                } else if let Some((a, b)) = t
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)))
                {
                    if a > b {
                        return Err(DataError::csv(
                            path,
                            format!("{field}: range '{t}' is empty; expected FIRST-LAST with FIRST <= LAST"),
                        ));
                    }
                    if b >= width {
                        return Err(out_of_range(b));
                    }
                    out.extend(a..=b);
                } else {
                    return Err(DataError::csv(
                        path,
                        format!(
                            "{field}: unknown column '{t}'; expected one of: {} (or 0-based indices / ranges like 0-3)",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::csv(path, format!("{field}: no columns selected; expected at least one")));
    }
    for (k, &c) in out.iter().enumerate() {
        if out[..k].contains(&c) {
            return Err(DataError::csv(
                path,
                format!("{field}: {} is selected twice; expected each column once", describe(names, c)),
            ));
        }
    }
    Ok(out)
}

/// Per-column `(mean, std)` over row-major `values` of `width` columns; a zero std becomes 1.
fn column_stats(values: &[f64], width: usize) -> Vec<(f64, f64)> {
    let n = (values.len() / width).max(1) as f64;
    (0..width)
        .map(|c| {
            let mean = values.iter().skip(c).step_by(width).sum::<f64>() / n;
            let var = values.iter().skip(c).step_by(width).map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let std = var.sqrt();
            (mean, if std > 0.0 && std.is_finite() { std } else { 1.0 })
        })
        .collect()
}

fn apply(values: &mut [f64], width: usize, stats: &[(f64, f64)]) {
    for row in values.chunks_exact_mut(width) {
        for (v, &(m, s)) in row.iter_mut().zip(stats) {
            *v = (*v - m) / s;
        }
    }
}

/// Checks the options that need no file: returns the validation fraction and the delimiter.
fn check_options(spec: &TableSpec) -> Result<(f64, char), DataError> {
    let path = spec.path.as_path();
    let validation = spec.validation.unwrap_or(TABLE_VALIDATION);
    if !(0.0..1.0).contains(&validation) {
        return Err(DataError::invalid(
            format!("csv '{}' validation", path.display()),
            format!("must be a fraction in [0, 1), got {validation}"),
        ));
    }
    if spec.task == TableTask::Classification && spec.standardize_targets == Some(true) {
        return Err(DataError::invalid(
            format!("csv '{}' standardize_targets", path.display()),
            "applies to regression only; expected it unset or false with task = \"classification\"",
        ));
    }
    let tsv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = spec.delimiter.unwrap_or(if tsv { '\t' } else { ',' });
    if !delimiter.is_ascii() || delimiter == '"' || delimiter == '#' {
        return Err(DataError::invalid(
            format!("csv '{}' delimiter", path.display()),
            format!("'{delimiter}' cannot separate fields; expected one ASCII character such as ',' ';' or a tab"),
        ));
    }
    Ok((validation, delimiter))
}

/// A reader of CSV rows as approxlab reads them: no header row assumed, fields trimmed, `#` comment lines skipped,
/// and flexible, so that a ragged row gets our message naming both lines rather than csv's.
pub(crate) fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .delimiter(delimiter)
        .from_reader(bytes)
}

/// Every record of the file, header included, fields trimmed and `#` comment lines skipped.
fn read_records(path: &Path, delimiter: char) -> Result<Vec<csv::StringRecord>, DataError> {
    if path.is_dir() {
        return Err(DataError::csv(path, "is a directory; expected a CSV file"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| DataError::csv(path, format!("cannot read file: {}", io_reason(&e))))?;
    let mut reader = csv_reader(&bytes, delimiter as u8);
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
            DataError::csv(path, format!("{line}{e}; expected UTF-8 text with '{delimiter}'-separated fields"))
        })?;
        records.push(record);
    }
    Ok(records)
}

fn line_of(r: &csv::StringRecord) -> u64 {
    r.position().map_or(0, |p| p.line())
}

/// The number of columns, which every record must share.
fn common_width(path: &Path, records: &[csv::StringRecord], delimiter: char) -> Result<usize, DataError> {
    let Some(first) = records.first() else {
        return Err(DataError::csv(path, "empty file; expected rows of comma-separated numbers"));
    };
    let width = first.len();
    if width < 2 {
        return Err(DataError::csv(
            path,
            format!(
                "line {}: 1 field; expected at least 2 columns (inputs and a target) separated by '{}' \
                 (set delimiter for another separator)",
                line_of(first),
                delimiter.escape_default()
            ),
        ));
    }
    for r in &records[1..] {
        if r.len() != width {
            return Err(DataError::csv(
                path,
                format!("line {}: {} fields; expected {width} like line {}", line_of(r), r.len(), line_of(first)),
            ));
        }
    }
    Ok(width)
}

/// The column names (header fields, or indices without a header) and the data records after them.
fn names_and_data<'a>(
    path: &Path,
    mode: HeaderMode,
    records: &'a [csv::StringRecord],
    width: usize,
) -> Result<(Vec<String>, &'a [csv::StringRecord]), DataError> {
    let first = &records[0];
    let has_header = match mode {
        HeaderMode::Yes => true,
        HeaderMode::No => false,
        HeaderMode::Auto => match records.get(1) {
            Some(second) => first.iter().zip(second).any(|(a, b)| !is_number(a) && is_number(b)),
            None => first.iter().any(|f| !is_number(f)),
        },
    };
    let names: Vec<String> = if has_header {
        first.iter().map(str::to_string).collect()
    } else {
        (0..width).map(|i| i.to_string()).collect()
    };
    let data = if has_header { &records[1..] } else { records };
    if data.is_empty() {
        return Err(DataError::csv(path, "no data rows after the header; expected rows of numbers"));
    }
    Ok((names, data))
}

/// The `(inputs, targets)` column indices, disjoint and non-empty.
fn input_and_target_columns(spec: &TableSpec, names: &[String]) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let path = spec.path.as_path();
    let width = names.len();
    let targets = match &spec.targets {
        Some(sel) => resolve(path, "targets", sel, names)?,
        None => vec![width - 1],
    };
    let inputs = match &spec.inputs {
        Some(sel) => resolve(path, "inputs", sel, names)?,
        None => (0..width).filter(|c| !targets.contains(c)).collect(),
    };
    if let Some(&c) = inputs.iter().find(|c| targets.contains(c)) {
        return Err(DataError::csv(
            path,
            format!("{} is both an input and a target; expected separate columns", describe(names, c)),
        ));
    }
    if inputs.is_empty() {
        return Err(DataError::csv(path, "no input columns left; expected at least one column besides the targets"));
    }
    if spec.task == TableTask::Classification && targets.len() != 1 {
        return Err(DataError::csv(
            path,
            format!(
                "classification takes one target column of labels, got {}; expected targets = [\"NAME\"]",
                targets.len()
            ),
        ));
    }
    Ok((inputs, targets))
}

/// Field `c` of `r` as a finite number; `role` says what the column should hold.
fn parse_number(path: &Path, names: &[String], r: &csv::StringRecord, c: usize, role: &str) -> Result<f64, DataError> {
    let text = &r[c];
    // Only an error names the place: formatting it for every field would cost more than the parse.
    let at = || format!("line {}, {}", line_of(r), describe(names, c));
    if text.is_empty() {
        return Err(DataError::csv(
            path,
            format!("{}: empty field; expected a number (missing values are not supported)", at()),
        ));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(DataError::csv(path, format!("{}: value is {v}; expected finite numbers", at()))),
        Err(_) => Err(DataError::csv(path, format!("{}: '{text}' is not a number; expected {role}", at()))),
    }
}

/// Columns `columns` of every record, row-major.
fn parse_numbers(
    path: &Path,
    names: &[String],
    data: &[csv::StringRecord],
    columns: &[usize],
    role: &str,
) -> Result<Vec<f64>, DataError> {
    let mut out = Vec::with_capacity(data.len() * columns.len());
    for r in data {
        for &c in columns {
            out.push(parse_number(path, names, r, c, role)?);
        }
    }
    Ok(out)
}

/// The labels of column `c` as one-hot rows, and the class names.
fn parse_classes(
    path: &Path,
    names: &[String],
    data: &[csv::StringRecord],
    c: usize,
) -> Result<(Vec<f64>, Vec<String>), DataError> {
    let labels: Vec<&str> = data.iter().map(|r| &r[c]).collect();
    if let Some(r) = data.iter().find(|r| r[c].is_empty()) {
        return Err(DataError::csv(
            path,
            format!("line {}, {}: empty class label; expected a label on every row", line_of(r), describe(names, c)),
        ));
    }
    let (ids, class_names) = classes_of(&labels);
    if class_names.len() > MAX_CLASSES {
        return Err(DataError::csv(
            path,
            format!(
                "target {} has {} distinct labels; expected at most {MAX_CLASSES} classes (numeric targets want task = \"regression\")",
                describe(names, c),
                class_names.len()
            ),
        ));
    }
    if class_names.len() < 2 {
        return Err(DataError::csv(
            path,
            format!(
                "target {} has a single class '{}'; expected at least 2 classes",
                describe(names, c),
                class_names[0]
            ),
        ));
    }
    let k = class_names.len();
    Ok((one_hot(&ids, k).into_iter().map(f64::from).collect(), class_names))
}

/// Which of the `n` rows are validation rows, and how many. A seeded shuffle picks them so that
/// the split is deterministic yet not biased by the file order.
fn validation_rows(path: &Path, n: usize, validation: f64, seed: u64) -> Result<(usize, Vec<bool>), DataError> {
    let n_val = (n as f64 * validation).round() as usize;
    if n_val >= n {
        return Err(DataError::invalid(
            format!("csv '{}' validation", path.display()),
            format!("{validation} of {n} rows leaves no training rows; expected a smaller fraction"),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_pcg::Pcg64::seed_from_u64(seed));
    let mut is_val = vec![false; n];
    for &i in &order[..n_val] {
        is_val[i] = true;
    }
    Ok((n_val, is_val))
}

/// The rows of `values` (`width` wide) whose `is_val` equals `val`, keeping file order.
fn pick_rows(values: &[f64], width: usize, is_val: &[bool], val: bool) -> Vec<f64> {
    (0..is_val.len())
        .filter(|&i| is_val[i] == val)
        .flat_map(|i| values[i * width..(i + 1) * width].iter().copied())
        .collect()
}

/// Standardizes both splits with the training split's statistics, when `enabled`.
fn standardize(enabled: bool, train: &mut [f64], validation: &mut [f64], width: usize) -> Option<Vec<(f64, f64)>> {
    let stats = enabled.then(|| column_stats(train, width));
    if let Some(s) = &stats {
        apply(train, width, s);
        apply(validation, width, s);
    }
    stats
}

/// The padded min/max box of the training inputs.
fn input_domain(xt: &[f64], ni: usize) -> Vec<(f64, f64)> {
    (0..ni)
        .map(|c| {
            let (lo, hi) = xt
                .iter()
                .skip(c)
                .step_by(ni)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let pad = if hi > lo { DOMAIN_PAD * (hi - lo) } else { 0.5 };
            (lo - pad, hi + pad)
        })
        .collect()
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|v| v as f32).collect()
}

impl TableDataset {
    pub fn load(spec: &TableSpec, seed: u64) -> Result<TableDataset, DataError> {
        let path = spec.path.as_path();
        let (validation, delimiter) = check_options(spec)?;
        let classification = spec.task == TableTask::Classification;
        let records = read_records(path, delimiter)?;
        let width = common_width(path, &records, delimiter)?;
        let (names, data) = names_and_data(path, spec.header, &records, width)?;
        let (inputs, targets) = input_and_target_columns(spec, &names)?;

        let n = data.len();
        let (ni, nt) = (inputs.len(), targets.len());
        let x = parse_numbers(path, &names, data, &inputs, "a number in every input column")?;
        let (y, class_names, out_dims) = if classification {
            let (y, class_names) = parse_classes(path, &names, data, targets[0])?;
            let k = class_names.len();
            (y, Some(class_names), k)
        } else {
            let role = "numbers in regression target columns (labels want task = \"classification\")";
            (parse_numbers(path, &names, data, &targets, role)?, None, nt)
        };

        let (n_val, is_val) = validation_rows(path, n, validation, seed)?;
        let (mut xt, mut xv) = (pick_rows(&x, ni, &is_val, false), pick_rows(&x, ni, &is_val, true));
        let (mut yt, mut yv) = (pick_rows(&y, out_dims, &is_val, false), pick_rows(&y, out_dims, &is_val, true));
        // Free the unsplit copies before the f32 copies are made.
        drop((x, y));

        let input_scaling = standardize(spec.standardize.unwrap_or(true), &mut xt, &mut xv, ni);
        let standardize_targets = !classification && spec.standardize_targets.unwrap_or(false);
        let target_scaling = standardize(standardize_targets, &mut yt, &mut yv, nt);
        let domain = input_domain(&xt, ni);

        let n_train = n - n_val;
        let file =
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let what = match &class_names {
            Some(c) => format!("classification, {ni} inputs -> {} classes", c.len()),
            None => format!("regression, {ni} inputs -> {nt} outputs"),
        };
        Ok(TableDataset {
            name: format!("csv {file} ({what}, {n_train} train / {n_val} validation)"),
            task: spec.task,
            input_names: inputs.iter().map(|&c| names[c].clone()).collect(),
            target_names: targets.iter().map(|&c| names[c].clone()).collect(),
            class_names,
            input_scaling,
            target_scaling,
            domain,
            train: FixedSet { inputs: to_f32(xt), targets: to_f32(yt), in_dims: ni, out_dims },
            validation: Rows { inputs: to_f32(xv), targets: to_f32(yv) },
        })
    }

    pub fn task(&self) -> TableTask {
        self.task
    }

    /// Header names (or `"0"`, `"1"`, ... without a header) of the input columns, in input order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// Names of the target columns (one for classification).
    pub fn target_names(&self) -> &[String] {
        &self.target_names
    }

    /// `(mean, std)` per input column when inputs are standardized: input = (raw - mean) / std.
    pub fn input_scaling(&self) -> Option<&[(f64, f64)]> {
        self.input_scaling.as_deref()
    }

    /// `(mean, std)` per target column when regression targets are standardized.
    pub fn target_scaling(&self) -> Option<&[(f64, f64)]> {
        self.target_scaling.as_deref()
    }

    /// The validation rows `(inputs, targets)`, transformed like the training rows.
    pub fn validation_points(&self) -> (&[f32], &[f32]) {
        (&self.validation.inputs, &self.validation.targets)
    }
}

/// Class ids per label and the sorted class names: numeric order when every label is an integer,
/// string order otherwise.
fn classes_of(labels: &[&str]) -> (Vec<usize>, Vec<String>) {
    let ints: Option<Vec<i64>> = labels.iter().map(|l| l.parse::<i64>().ok()).collect();
    match ints {
        Some(ints) => {
            let map: BTreeMap<i64, usize> = ints.iter().map(|&v| (v, 0)).collect();
            let map: BTreeMap<i64, usize> = map.into_keys().enumerate().map(|(i, v)| (v, i)).collect();
            (ints.iter().map(|v| map[v]).collect(), map.keys().map(|v| v.to_string()).collect())
        }
        None => {
            let map: BTreeMap<&str, usize> = labels.iter().map(|&l| (l, 0)).collect();
            let map: BTreeMap<&str, usize> = map.into_keys().enumerate().map(|(i, v)| (v, i)).collect();
            (labels.iter().map(|l| map[l]).collect(), map.keys().map(|v| v.to_string()).collect())
        }
    }
}

impl Dataset for TableDataset {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn input_dims(&self) -> usize {
        self.train.in_dims
    }
    fn output_dims(&self) -> usize {
        self.train.out_dims
    }
    fn domain(&self) -> &[(f64, f64)] {
        &self.domain
    }
    fn kind(&self) -> Kind {
        match &self.class_names {
            Some(c) => Kind::Classification { classes: c.len() },
            None => Kind::Table,
        }
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
    /// The validation rows, or the training rows when there are none.
    fn eval_set(&self) -> EvalSet<'_> {
        let (x, y) = if self.validation.inputs.is_empty() {
            (&self.train.inputs, &self.train.targets)
        } else {
            (&self.validation.inputs, &self.validation.targets)
        };
        EvalSet { inputs: Cow::Borrowed(x), targets: Cow::Borrowed(y) }
    }
    fn class_names(&self) -> Option<Vec<String>> {
        self.class_names.clone()
    }
    fn truth(&self, _inputs: &[f32], _out: &mut [f32]) -> bool {
        false
    }
}
