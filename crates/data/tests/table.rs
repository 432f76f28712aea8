use std::path::{Path, PathBuf};

use approxlab_data::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// 100 rows of `a,b,c,y` with `y = 2a - b + 3c`, a header when `header`.
fn regression_text(header: bool) -> String {
    let mut s = if header { "a, b, c, y\n".to_string() } else { String::new() };
    for i in 0..100 {
        let (a, b, c) = (i as f64 * 0.5, (i % 7) as f64 - 3.0, ((i * 37) % 11) as f64 * 10.0);
        s += &format!("{a},{b},{c},{}\n", 2.0 * a - b + 3.0 * c);
    }
    s
}

fn load(spec: TableSpec) -> TableDataset {
    TableDataset::load(&spec, 7).unwrap()
}

fn load_err(spec: TableSpec) -> String {
    let e = TableDataset::load(&spec, 7).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

fn column(values: &[f32], width: usize, c: usize) -> Vec<f64> {
    values.iter().skip(c).step_by(width).map(|&v| v as f64).collect()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
}

#[test]
fn csv_regression_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "reg.csv", &regression_text(true));
    let d = DataSpec::parse(&format!("csv:{}", path.display())).unwrap().build(3).unwrap();
    assert_eq!((d.input_dims(), d.output_dims(), d.kind()), (3, 1, Kind::Table));
    assert_eq!((d.classes(), d.class_names()), (None, None));
    assert!(d.test_set().is_none());
    assert!(!d.has_truth(), "a table's points are all there is");
    assert!(DataSpec::parse("mandelbrot").unwrap().build(3).unwrap().has_truth());
    // 80 / 20 split.
    assert_eq!(d.len(), Some(80));
    assert_eq!(d.eval_set().len(3), 20);
    assert_eq!(d.eval_set().targets.len(), 20);
    assert!(d.name().contains("reg.csv") && d.name().contains("80 train / 20 validation"), "{}", d.name());
    // Standardized inputs on the training split; raw targets.
    let (x, y) = d.training_points().unwrap();
    for c in 0..3 {
        let (m, s) = mean_std(&column(x, 3, c));
        assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5, "column {c}: mean {m}, std {s}");
        let (lo, hi) = d.domain()[c];
        assert!(column(x, 3, c).iter().all(|&v| v > lo && v < hi), "column {c} outside {lo}..{hi}");
        assert!(hi - lo < 10.0, "the domain is the standardized box, padded a little: {lo}..{hi}");
    }
    assert!(y.iter().any(|&v| v > 100.0), "targets are raw values");
    let m = d.metrics(&d.eval_set().targets, &d.eval_set().targets);
    assert_eq!((m.mse, m.accuracy), (0.0, None));

    // The raw rows can be recovered through the scaling.
    let t = load(TableSpec::new(&path));
    assert_eq!(t.input_names(), &["a", "b", "c"]);
    assert_eq!(t.target_names(), &["y"]);
    let scale = t.input_scaling().unwrap();
    let (x, y) = t.training_points().unwrap();
    for (row, yv) in x.chunks(3).zip(y) {
        let raw: Vec<f64> = row.iter().zip(scale).map(|(&v, &(m, s))| v as f64 * s + m).collect();
        assert!((2.0 * raw[0] - raw[1] + 3.0 * raw[2] - *yv as f64).abs() < 1e-3, "{raw:?} -> {yv}");
    }
}

#[test]
fn csv_header_auto_detection() {
    let tmp = tempfile::tempdir().unwrap();
    // No header: every row is data, columns are named by index.
    let p = write(tmp.path(), "plain.csv", &regression_text(false));
    let d = load(TableSpec { validation: Some(0.0), ..TableSpec::new(&p) });
    assert_eq!(d.len(), Some(100));
    assert_eq!(d.input_names(), &["0", "1", "2"]);
    // header = true forces the first row out, header = false keeps a text first row as data (and fails).
    let d = load(TableSpec { validation: Some(0.0), header: HeaderMode::Yes, ..TableSpec::new(&p) });
    assert_eq!(d.len(), Some(99));
    let p = write(tmp.path(), "h.csv", &regression_text(true));
    let e = load_err(TableSpec { header: HeaderMode::No, ..TableSpec::new(&p) });
    assert!(e.contains("line 1") && e.contains("'a'") && e.contains("not a number"), "{e}");
    // A column of string labels does not make the first data row a header.
    let p = write(tmp.path(), "labels.csv", "1,2,cat\n3,4,dog\n5,6,cat\n7,8,dog\n");
    let d = load(TableSpec { task: TableTask::Classification, validation: Some(0.0), ..TableSpec::new(&p) });
    assert_eq!(d.len(), Some(4));
    let p = write(tmp.path(), "labels_h.csv", "x1,x2,animal\n1,2,cat\n3,4,dog\n5,6,cat\n");
    let d = load(TableSpec { task: TableTask::Classification, validation: Some(0.0), ..TableSpec::new(&p) });
    assert_eq!((d.len(), d.target_names()), (Some(3), &["animal".to_string()][..]));
    // One-row files: any non-number makes it a header (and then there is no data).
    let p = write(tmp.path(), "one.csv", "x,y\n");
    let e = load_err(TableSpec::new(&p));
    assert!(e.contains("no data rows"), "{e}");
}

#[test]
fn csv_column_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "reg.csv", &regression_text(true));
    let base = || TableSpec { standardize: Some(false), validation: Some(0.0), ..TableSpec::new(&p) };
    let name = |s: &str| Column::Name(s.into());
    // By name, in the given order.
    let d = load(TableSpec {
        inputs: Some(Columns::List(vec![name("c"), name("a")])),
        targets: Some(Columns::One(name("y"))),
        ..base()
    });
    assert_eq!(d.input_names(), &["c", "a"]);
    let (x, _) = d.training_points().unwrap();
    assert_eq!(&x[2..4], &[((37 % 11) * 10) as f32, 0.5]);
    // By index, range string and index string; several regression targets.
    let d = load(TableSpec {
        inputs: Some(Columns::One(name("0-1"))),
        targets: Some(Columns::List(vec![Column::Index(3), name("2")])),
        ..base()
    });
    assert_eq!(
        (d.input_names(), d.target_names()),
        (&["a".to_string(), "b".into()][..], &["y".to_string(), "c".into()][..])
    );
    assert_eq!((d.input_dims(), d.output_dims()), (2, 2));
    let (x, y) = d.training_points().unwrap();
    assert_eq!((&x[..2], &y[..2]), (&[0.0f32, -3.0][..], &[3.0f32, 0.0][..]));
    // Default inputs: every column that is not a target.
    let d = load(TableSpec { targets: Some(Columns::One(Column::Index(0))), ..base() });
    assert_eq!(d.input_names(), &["b", "c", "y"]);
    // standardize_targets.
    let d = load(TableSpec { standardize_targets: Some(true), validation: Some(0.2), ..TableSpec::new(&p) });
    let (m, s) = mean_std(&column(d.training_points().unwrap().1, 1, 0));
    assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5, "{m} {s}");
    assert_eq!(d.target_scaling().unwrap().len(), 1);
    // Semicolons with the delimiter option.
    let p2 = write(tmp.path(), "semi.csv", &regression_text(true).replace(',', ";"));
    let d = load(TableSpec { delimiter: Some(';'), ..TableSpec::new(&p2) });
    assert_eq!(d.input_dims(), 3);
    let e = load_err(TableSpec::new(&p2));
    assert!(e.contains("1 field") && e.contains("at least 2 columns"), "{e}");
}

#[test]
fn csv_classification() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = "x,y,species\n".to_string();
    let names = ["virginica", "setosa", "versicolor"];
    for i in 0..30 {
        text += &format!("{},{},{}\n", i, i * 2, names[i % 3]);
    }
    let p = write(tmp.path(), "iris.csv", &text);
    let d = DataSpec::Table(TableSpec { task: TableTask::Classification, ..TableSpec::new(&p) }).build(1).unwrap();
    assert_eq!(d.kind(), Kind::Classification { classes: 3 });
    assert_eq!(d.classes(), Some(3));
    assert_eq!(d.class_names().unwrap(), vec!["setosa", "versicolor", "virginica"]);
    assert_eq!((d.input_dims(), d.output_dims(), d.len()), (2, 3, Some(24)));
    // One-hot rows.
    let (_, y) = d.training_points().unwrap();
    for row in y.chunks(3) {
        assert_eq!(row.iter().sum::<f32>(), 1.0);
        assert!(row.iter().all(|&v| v == 0.0 || v == 1.0));
    }
    // Without standardization every row's class follows from its x.
    let t = load(TableSpec {
        task: TableTask::Classification,
        standardize: Some(false),
        validation: Some(0.0),
        ..TableSpec::new(&p)
    });
    let (x, y) = t.training_points().unwrap();
    for (row, target) in x.chunks(2).zip(y.chunks(3)) {
        let want = match names[row[0] as usize % 3] {
            "setosa" => 0,
            "versicolor" => 1,
            _ => 2,
        };
        assert_eq!(argmax(target), want);
    }
    let ev = d.eval_set();
    let m = d.metrics(&ev.targets, &ev.targets);
    assert_eq!((m.mse, m.accuracy), (0.0, Some(1.0)));

    // Integer labels sort numerically: 10 after 2.
    let p = write(tmp.path(), "ints.csv", "a,label\n0.5,10\n1.5,2\n2.5,1\n3.5,2\n");
    let d = load(TableSpec { task: TableTask::Classification, validation: Some(0.0), ..TableSpec::new(&p) });
    assert_eq!(d.class_names().unwrap(), vec!["1", "2", "10"]);
    let (_, y) = d.training_points().unwrap();
    assert_eq!(y.chunks(3).map(argmax).collect::<Vec<_>>(), vec![2, 1, 0, 1]);
}

#[test]
fn csv_split_is_seeded_and_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "reg.csv", &regression_text(true));
    let spec = TableSpec { standardize: Some(false), validation: Some(0.3), ..TableSpec::new(&p) };
    let a = TableDataset::load(&spec, 1).unwrap();
    let b = TableDataset::load(&spec, 1).unwrap();
    let c = TableDataset::load(&spec, 2).unwrap();
    assert_eq!(a.training_points(), b.training_points());
    assert_ne!(a.validation_points(), c.validation_points());
    assert_eq!((a.len(), a.validation_points().0.len()), (Some(70), 30 * 3));
    // Training and validation rows together are the file's rows, each once.
    let mut firsts: Vec<f32> =
        a.training_points().unwrap().0.chunks(3).chain(a.validation_points().0.chunks(3)).map(|r| r[0]).collect();
    firsts.sort_by(f32::total_cmp);
    assert_eq!(firsts, (0..100).map(|i| i as f32 * 0.5).collect::<Vec<_>>());
    // Validation 0: the eval set is the training set.
    let d = load(TableSpec { validation: Some(0.0), ..TableSpec::new(&p) });
    assert_eq!(d.eval_set().inputs, d.training_points().unwrap().0);
}

#[test]
fn csv_toml_specs() {
    let s: DataSpec = toml::from_str(
        "kind = \"csv\"\npath = \"t.csv\"\ninputs = [\"a\", 2, \"4-6\"]\ntargets = [\"y\"]\ntask = \"classification\"\n\
         header = true\nstandardize = false\nvalidation = 0.1\ndelimiter = \";\"\n",
    )
    .unwrap();
    assert_eq!(
        s,
        DataSpec::Table(TableSpec {
            path: "t.csv".into(),
            inputs: Some(Columns::List(vec![Column::Name("a".into()), Column::Index(2), Column::Name("4-6".into())])),
            targets: Some(Columns::List(vec![Column::Name("y".into())])),
            task: TableTask::Classification,
            header: HeaderMode::Yes,
            standardize: Some(false),
            standardize_targets: None,
            validation: Some(0.1),
            delimiter: Some(';'),
        })
    );
    assert_eq!(toml::from_str::<DataSpec>(&toml::to_string(&s).unwrap()).unwrap(), s);
    let s: DataSpec = toml::from_str("kind = \"table\"\npath = \"t.csv\"\nheader = \"auto\"\ntargets = 3\n").unwrap();
    assert_eq!(
        s,
        DataSpec::Table(TableSpec { targets: Some(Columns::One(Column::Index(3))), ..TableSpec::new("t.csv") })
    );
    assert_eq!(toml::from_str::<DataSpec>(&toml::to_string(&s).unwrap()).unwrap(), s);
    let s: DataSpec = toml::from_str("kind = \"csv\"\npath = \"t.csv\"\nheader = false\n").unwrap();
    assert!(matches!(s, DataSpec::Table(TableSpec { header: HeaderMode::No, .. })));
    let e =
        toml::from_str::<DataSpec>("kind = \"csv\"\npath = \"t.csv\"\nheader = \"maybe\"\n").unwrap_err().to_string();
    assert!(e.contains("maybe"), "{e}");
    let e = toml::from_str::<DataSpec>("kind = \"csv\"\npath = \"t.csv\"\ninputs = [0, -1]\n").unwrap_err().to_string();
    assert!(e.contains("column index -1 is negative"), "{e}");
    let e = toml::from_str::<DataSpec>("kind = \"csv\"\npath = \"t.csv\"\ninputs = 1.5\n").unwrap_err().to_string();
    assert!(e.contains("a column name, a 0-based index"), "{e}");
    let e = toml::from_str::<DataSpec>("kind = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"\n").unwrap_err().to_string();
    assert!(e.contains("target"), "{e}");
    assert_eq!(DataSpec::parse("csv:data/t.csv").unwrap(), DataSpec::Table(TableSpec::new("data/t.csv")));
    assert!(DataSpec::parse("csv:").unwrap_err().to_string().contains("csv:PATH"));
    assert!(DataSpec::parse("csv").unwrap_err().to_string().contains("csv:PATH"));
}

#[test]
fn csv_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = |name: &str, text: &str, f: &dyn Fn(TableSpec) -> TableSpec| -> String {
        let p = write(dir, name, text);
        let e = load_err(f(TableSpec::new(&p)));
        assert!(e.starts_with(&format!("csv '{}'", p.display())) || e.contains(name), "names the file: {e}");
        e
    };
    let same = |s: TableSpec| s;
    let classify = |s: TableSpec| TableSpec { task: TableTask::Classification, ..s };

    let e = err("ragged.csv", "a,b,y\n1,2,3\n4,5\n6,7,8\n", &same);
    assert!(e.contains("line 3") && e.contains("2 fields") && e.contains("expected 3"), "{e}");
    let e = err("nan.csv", "a,b,y\n1,2,3\n4,NaN,5\n", &same);
    assert!(
        e.contains("line 3") && e.contains("column 'b' (index 1)") && e.contains("NaN") && e.contains("finite"),
        "{e}"
    );
    let e = err("inf.csv", "a,b,y\n1,2,3\n4,5,-inf\n", &same);
    assert!(e.contains("line 3") && e.contains("'y'") && e.contains("inf"), "{e}");
    let e = err("text.csv", "a,b,y\n1,2,3\n4,five,5\n", &same);
    assert!(e.contains("line 3") && e.contains("column 'b' (index 1)") && e.contains("'five' is not a number"), "{e}");
    let e = err("label.csv", "a,b,y\n1,2,3\n4,5,cat\n", &same);
    assert!(e.contains("'cat' is not a number") && e.contains("classification"), "{e}");
    let e = err("hole.csv", "a,b,y\n1,2,3\n4,,5\n", &same);
    assert!(e.contains("line 3") && e.contains("empty field"), "{e}");
    let e = err("unknown.csv", "a,b,y\n1,2,3\n", &|s| TableSpec {
        inputs: Some(Columns::One(Column::Name("z".into()))),
        ..s
    });
    assert!(e.contains("unknown column 'z'") && e.contains("a, b, y"), "{e}");
    let e = err("range.csv", "a,b,y\n1,2,3\n", &|s| TableSpec { targets: Some(Columns::One(Column::Index(5))), ..s });
    assert!(e.contains("index 5") && e.contains("0 to 2"), "{e}");
    let e = err("both.csv", "a,b,y\n1,2,3\n", &|s| TableSpec {
        inputs: Some(Columns::One(Column::Name("0-2".into()))),
        ..s
    });
    assert!(e.contains("column 'y' (index 2) is both an input and a target"), "{e}");
    let e = err("twice.csv", "a,b,y\n1,2,3\n", &|s| TableSpec {
        inputs: Some(Columns::List(vec![Column::Index(0), Column::Name("a".into())])),
        ..s
    });
    assert!(e.contains("selected twice"), "{e}");
    let e = err("empty.csv", "", &same);
    assert!(e.contains("empty file"), "{e}");
    let e = err("comments.csv", "# nothing here\n\n", &same);
    assert!(e.contains("empty file"), "{e}");
    let e = err("header_only.csv", "a,b,y\n", &same);
    assert!(e.contains("no data rows"), "{e}");
    let e = err("one_col.csv", "1\n2\n", &same);
    assert!(e.contains("at least 2 columns"), "{e}");

    let mut many = "x,label\n".to_string();
    for i in 0..1001 {
        many += &format!("{i},c{i}\n");
    }
    let e = err("many.csv", &many, &classify);
    assert!(e.contains("1001 distinct labels") && e.contains("at most 1000"), "{e}");
    let e = err("single.csv", "x,label\n1,a\n2,a\n3,a\n", &classify);
    assert!(e.contains("single class 'a'") && e.contains("at least 2"), "{e}");
    let e = err("two_targets.csv", "x,y,z\n1,2,3\n", &|s| {
        classify(TableSpec { targets: Some(Columns::List(vec![Column::Index(1), Column::Index(2)])), ..s })
    });
    assert!(e.contains("one target column"), "{e}");
    let e = err("no_label.csv", "x,label\n1,a\n2,\n3,b\n", &classify);
    assert!(e.contains("line 3") && e.contains("empty class label"), "{e}");

    let e = err("val.csv", "a,y\n1,2\n", &|s| TableSpec { validation: Some(1.0), ..s });
    assert!(e.contains("validation") && e.contains("[0, 1)"), "{e}");
    let e = err("val2.csv", "a,y\n1,2\n3,4\n", &|s| TableSpec { validation: Some(0.9), ..s });
    assert!(e.contains("no training rows"), "{e}");
    let e = load_err(TableSpec::new(dir.join("missing.csv")));
    assert!(e.contains("missing.csv") && e.contains("cannot read file"), "{e}");
}

#[test]
fn accuracy_and_confusion_matrix_by_hand() {
    // Four rows, three classes: true 0, 1, 2, 1; predicted 0, 2, 2, 1.
    let target = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let pred = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6, -1.0, 0.0, 2.0, 0.3, 0.4, 0.3];
    assert_eq!(accuracy(&pred, &target, 3), 0.75);
    assert_eq!(confusion_matrix(&pred, &target, 3), vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1]]);
    let m = classification_metrics(&pred, &target, 3);
    assert_eq!(m.accuracy, Some(0.75));
    assert!((m.mse - mse(&pred, &target)).abs() < 1e-15);
    // Ties go to the first class; NaN never wins.
    assert_eq!(argmax(&[0.5, 0.5, 0.1]), 0);
    assert_eq!(argmax(&[f32::NAN, 0.1, 0.3]), 2);
    assert_eq!(accuracy(&[], &[], 3), 0.0);
    // Accuracy is serialised with the other metrics.
    let text = toml::to_string(&m).unwrap();
    assert!(text.contains("accuracy = 0.75"), "{text}");
}
