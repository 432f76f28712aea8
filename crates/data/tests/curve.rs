use approxlab_data::*;
use std::f64::consts::PI;
use std::io::Write;

fn curve(target: &str) -> CurveDataset {
    CurveDataset::build(&CurveSpec { target: Some(target.into()), ..CurveSpec::default() }, 1).unwrap()
}

fn truth_at(d: &dyn Dataset, x: f64) -> f64 {
    let mut out = [0.0f32];
    assert!(d.truth(&[x as f32], &mut out));
    out[0] as f64
}

type Formula = fn(f64) -> f64;

#[test]
fn named_targets_match_direct_formulas() {
    let cases: [(&str, Formula); 8] = [
        ("sin(3x)+cos(2x)+sin(x)+cos(3x)", |x| (3.0 * x).sin() + (2.0 * x).cos() + x.sin() + (3.0 * x).cos()),
        ("2exp(-x^2)", |x| 2.0 * (-x * x).exp()),
        ("x^3/5", |x| x * x * x / 5.0),
        ("abs(x)", |x| x.abs()),
        ("sin(6x)+cos(4x)+sin(2x)+cos(6x)", |x| (6.0 * x).sin() + (4.0 * x).cos() + (2.0 * x).sin() + (6.0 * x).cos()),
        ("2abs(cos(2x))-1", |x| 2.0 * (2.0 * x).cos().abs() - 1.0),
        ("-abs(x)/4+abs(2+x)-abs(2x+1)/2", |x| -x.abs() / 4.0 + (2.0 + x).abs() - (2.0 * x + 1.0).abs() / 2.0),
        ("sin(3x)", |x| (3.0 * x).sin()),
    ];
    for (name, f) in cases {
        let d = curve(name);
        assert!(d.named().is_some(), "{name} should be a named curve");
        for x in [-3.0, -1.3, -0.5, 0.0, 0.7, 2.2, 3.1] {
            let (got, want) = (truth_at(&d, x), f(x as f32 as f64));
            assert!((got - want).abs() < 1e-5, "{name} at {x}: {got} vs {want}");
        }
        let (xs, ys) = d.training_points().unwrap();
        for (&x, &y) in xs.iter().zip(ys) {
            assert!((y as f64 - f(x as f64)).abs() < 1e-4, "{name} training point at {x}");
        }
    }
}

#[test]
fn step_and_sawtooth() {
    let d = curve("step");
    assert_eq!(truth_at(&d, -0.1), -1.0);
    assert_eq!(truth_at(&d, 0.0), 1.0);
    assert_eq!(truth_at(&d, 2.0), 1.0);
    let d = curve("sawtooth");
    let p = 2.0 * PI / 3.0;
    assert!(truth_at(&d, 0.0).abs() < 1e-6);
    assert!((truth_at(&d, p / 4.0) - 0.5).abs() < 1e-5);
    assert!((truth_at(&d, p / 2.0 - 1e-3) - 1.0).abs() < 1e-2);
    assert!((truth_at(&d, p / 2.0 + 1e-3) + 1.0).abs() < 1e-2);
    assert!((truth_at(&d, 0.3 + p) - truth_at(&d, 0.3)).abs() < 1e-5);
}

#[test]
fn aliases_and_whitespace() {
    for (name, alias) in NAMED_CURVES {
        assert_eq!(NamedCurve::from_name(name), NamedCurve::from_name(alias), "{name} / {alias}");
        assert!(NamedCurve::from_name(alias).is_some());
    }
    assert_eq!(NamedCurve::from_name(" sin(3x) + cos(2x) + sin(x) + cos(3x) "), Some(NamedCurve::Waves));
    assert_eq!(NamedCurve::from_name("sin(4x)"), None);
}

#[test]
fn default_curve_shape_and_eval_grid() {
    let d = CurveDataset::build(&CurveSpec::default(), 9).unwrap();
    assert_eq!(d.named(), Some(NamedCurve::Waves));
    assert_eq!(d.len(), Some(300));
    assert_eq!(d.kind(), Kind::Curve);
    assert_eq!(d.domain(), &[(-PI, PI)]);
    let ev = d.eval_set();
    assert_eq!(ev.len(1), 1000);
    assert_eq!(ev.inputs[0], -PI as f32);
    assert_eq!(ev.inputs[999], PI as f32);
    assert!(d.training_points().unwrap().0.iter().all(|&x| (-PI as f32..=PI as f32).contains(&x)));
}

#[test]
fn user_expression() {
    let d = curve("x^2 - 2*sin(pi*x) + e");
    assert!(d.named().is_none());
    assert_eq!(d.expression(), Some("x^2 - 2*sin(pi*x) + e"));
    for x in [-2.0f64, 0.0, 0.5, 1.7] {
        let want = x * x - 2.0 * (PI * x).sin() + std::f64::consts::E;
        assert!((truth_at(&d, x) - want).abs() < 1e-5);
    }
    // Unary minus binds looser than ^: a Gaussian, not exp(+x^2).
    let d = curve("exp(-x^2) + 1e-3*x");
    assert!((truth_at(&d, 2.0) - ((-4.0f64).exp() + 0.002)).abs() < 1e-6);
    let d = curve("3x + 2(x-1)");
    assert!((truth_at(&d, 1.5) - 5.5).abs() < 1e-6);
    let d = CurveDataset::build(
        &CurveSpec { target: Some("3".into()), domain: Some([0.0, 1.0]), ..CurveSpec::default() },
        1,
    )
    .unwrap();
    assert!(d.training_points().unwrap().1.iter().all(|&y| y == 3.0));
}

#[test]
fn bad_expressions_give_one_line_errors() {
    let err = |t: &str| {
        CurveDataset::build(&CurveSpec { target: Some(t.into()), ..CurveSpec::default() }, 1).unwrap_err().to_string()
    };
    let e = err("sin(");
    assert!(e.starts_with("curve 'sin(': could not parse expression: "), "{e}");
    assert!(e.ends_with("; expected an expression in x such as sin(3*x)"), "{e}");
    let e = err("y+1");
    assert!(e.contains("unknown variable 'y'"), "{e}");
    let e = err("ln(x)");
    assert!(e.contains("not finite"), "{e}");
    let e = err("");
    assert!(e.contains("empty"), "{e}");
    for t in ["sin(", "y+1", "ln(x)", "", "x +* 2", "((x)"] {
        assert!(!err(t).contains('\n'), "{t}");
    }
}

#[test]
fn invalid_fields() {
    let build = |s: CurveSpec| CurveDataset::build(&s, 1).unwrap_err().to_string();
    let e = build(CurveSpec { domain: Some([1.0, -1.0]), ..CurveSpec::default() });
    assert!(e.starts_with("curve domain: lower bound (1.0) must be less than upper bound (-1.0)"), "{e}");
    let e = build(CurveSpec { samples: Some(0), ..CurveSpec::default() });
    assert!(e.starts_with("curve samples:"), "{e}");
    let e = build(CurveSpec { noise: Some(-1.0), ..CurveSpec::default() });
    assert!(e.starts_with("curve noise:"), "{e}");
    let e = build(CurveSpec { csv: Some("a.csv".into()), target: Some("abs".into()), ..CurveSpec::default() });
    assert!(e.contains("'target' cannot be combined with 'csv'"), "{e}");
}

#[test]
fn noise_is_seeded_and_eval_is_clean() {
    let spec = CurveSpec { target: Some("sine".into()), noise: Some(0.1), samples: Some(2000), ..CurveSpec::default() };
    let a = CurveDataset::build(&spec, 4).unwrap();
    let b = CurveDataset::build(&spec, 4).unwrap();
    assert_eq!(a.training_points(), b.training_points());
    let (xs, ys) = a.training_points().unwrap();
    let resid: Vec<f64> = xs.iter().zip(ys).map(|(&x, &y)| y as f64 - (3.0 * x as f64).sin()).collect();
    let sd = (resid.iter().map(|r| r * r).sum::<f64>() / resid.len() as f64).sqrt();
    assert!((sd - 0.1).abs() < 0.01, "{sd}");
    let ev = a.eval_set();
    for (&x, &y) in ev.inputs.iter().zip(ev.targets.iter()) {
        assert!((y as f64 - (3.0 * x as f64).sin()).abs() < 1e-5);
    }
}

fn write_csv(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
    p
}

fn csv_spec(p: &std::path::Path) -> CurveSpec {
    CurveSpec { csv: Some(p.to_path_buf()), ..CurveSpec::default() }
}

#[test]
fn csv_points_with_and_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(&dir, "pts.csv", "x, y\n0, 1\n1.5, -2\n# comment\n\n3,4e-1\n");
    let d = CurveDataset::build(&csv_spec(&p), 1).unwrap();
    assert_eq!(d.training_points().unwrap(), (&[0.0, 1.5, 3.0][..], &[1.0, -2.0, 0.4][..]));
    assert_eq!(d.domain(), &[(0.0, 3.0)]);
    assert_eq!(d.eval_set().len(1), 3);
    assert!(!d.truth(&[0.5], &mut [0.0]));
    let p = write_csv(&dir, "noheader.csv", "-1,2\n1,3\n");
    let d = CurveDataset::build(&CurveSpec { domain: Some([-2.0, 2.0]), ..csv_spec(&p) }, 1).unwrap();
    assert_eq!(d.len(), Some(2));
    assert_eq!(d.domain(), &[(-2.0, 2.0)]);
}

#[test]
fn csv_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ragged.csv", "x,y\n1,2\n3,4,5\n", "line 3: row has 3 columns; expected 2 columns (x, y)"),
        ("word.csv", "1,2\n3,abc\n", "line 2, column 2: 'abc' is not a number"),
        ("nan.csv", "1,2\nNaN,4\n", "line 2, column 1: value is NaN; expected finite numbers"),
        ("inf.csv", "1,inf\n", "line 1, column 2: value is inf"),
        ("empty.csv", "", "no data rows"),
        ("header_only.csv", "x,y\n", "no data rows"),
        ("one_col.csv", "1\n2\n", "line 1: row has 1 columns"),
        ("same_x.csv", "1,2\n1,3\n", "all x values are equal"),
    ];
    for (name, text, want) in cases {
        let p = write_csv(&dir, name, text);
        let e = CurveDataset::build(&csv_spec(&p), 1).unwrap_err().to_string();
        assert!(e.starts_with(&format!("csv '{}': ", p.display())), "{e}");
        assert!(e.contains(want), "{name}: {e}");
        assert!(!e.contains('\n'));
    }
    let e = CurveDataset::build(&csv_spec(&dir.path().join("missing.csv")), 1).unwrap_err().to_string();
    assert!(e.contains("missing.csv") && e.contains("cannot read file: No such file or directory"), "{e}");
}
