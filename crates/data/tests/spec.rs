use approxlab_data::*;
use rand::SeedableRng;

#[test]
fn parse_every_cli_form() {
    assert_eq!(DataSpec::parse("mandelbrot").unwrap(), DataSpec::Mandelbrot(MandelbrotSpec::default()));
    match DataSpec::parse("mandelbrot:periodic").unwrap() {
        DataSpec::Mandelbrot(s) => assert_eq!(s.target, MandelbrotTarget::Periodic),
        other => panic!("{other:?}"),
    }
    assert_eq!(DataSpec::parse("image:dir/foo.png").unwrap(), DataSpec::Image(ImageSpec::new("dir/foo.png")));
    assert_eq!(
        DataSpec::parse("curve:2exp(-x^2)").unwrap(),
        DataSpec::Curve(CurveSpec { target: Some("2exp(-x^2)".into()), ..CurveSpec::default() })
    );
    assert_eq!(
        DataSpec::parse("curve:sin(3*x) + x").unwrap(),
        DataSpec::Curve(CurveSpec { target: Some("sin(3*x) + x".into()), ..CurveSpec::default() })
    );
    assert_eq!(
        DataSpec::parse("curve:csv:pts.csv").unwrap(),
        DataSpec::Curve(CurveSpec { csv: Some("pts.csv".into()), ..CurveSpec::default() })
    );
    assert_eq!(DataSpec::parse("curve").unwrap(), DataSpec::Curve(CurveSpec::default()));
    for (s, shape) in [("sphere", SurfaceShape::Sphere), ("shell", SurfaceShape::Shell), ("torus", SurfaceShape::Torus)]
    {
        assert_eq!(DataSpec::parse(&format!("surface:{s}")).unwrap(), DataSpec::Surface(SurfaceSpec::shape(shape)));
    }
}

#[test]
fn parse_errors() {
    let e = DataSpec::parse("cifar").unwrap_err().to_string();
    assert!(e.starts_with("unknown data set 'cifar'; expected one of: "), "{e}");
    for known in [
        "mandelbrot",
        "image:PATH",
        "curve:NAME_OR_EXPR",
        "curve:csv:PATH",
        "surface:sphere",
        "surface:shell",
        "surface:torus",
        "mnist:DIR",
        "csv:PATH",
    ] {
        assert!(e.contains(known), "{e} lacks {known}");
    }
    let e = DataSpec::parse("surface:cube").unwrap_err().to_string();
    assert!(e.contains("unknown surface 'cube'") && e.contains("surface:torus"), "{e}");
    assert!(DataSpec::parse("image:").unwrap_err().to_string().contains("expected image:PATH"));
    assert!(DataSpec::parse("image").is_err());
    assert!(DataSpec::parse("curve:").is_err());
    assert!(DataSpec::parse("curve:csv:").unwrap_err().to_string().contains("curve:csv:PATH"));
    assert!(DataSpec::parse("mandelbrot:blue").unwrap_err().to_string().contains("smooth or periodic"));
    assert!(DataSpec::parse("").is_err());
}

#[test]
fn toml_specs() {
    let s: DataSpec = toml::from_str(
        "kind = \"mandelbrot\"\nwindow = [-2.0, 1.0, -1.0, 1.0]\ndepth = 50\ntarget = \"periodic\"\non_the_fly = true\n",
    )
    .unwrap();
    assert_eq!(
        s,
        DataSpec::Mandelbrot(MandelbrotSpec {
            window: [-2.0, 1.0, -1.0, 1.0],
            depth: 50,
            target: MandelbrotTarget::Periodic,
            samples: None,
            on_the_fly: true
        })
    );
    let s: DataSpec =
        toml::from_str("kind = \"image\"\npath = \"a.png\"\ncolor = \"rgb\"\nmax_size = 64\nholdout = true\n").unwrap();
    assert_eq!(
        s,
        DataSpec::Image(ImageSpec { path: "a.png".into(), color: ColorMode::Rgb, max_size: Some(64), holdout: true })
    );
    let s: DataSpec = toml::from_str("kind = \"surface\"\nshape = \"torus\"\nminor_radius = 0.5\n").unwrap();
    assert!(matches!(
        s,
        DataSpec::Surface(SurfaceSpec { shape: Some(SurfaceShape::Torus), minor_radius: Some(_), .. })
    ));
    let s: DataSpec =
        toml::from_str("kind = \"curve\"\ntarget = \"abs\"\nsamples = 50\nnoise = 0.1\ndomain = [-1.0, 1.0]\n")
            .unwrap();
    assert_eq!(s.build(1).unwrap().len(), Some(50));
    let e = toml::from_str::<DataSpec>("kind = \"mandelbrot\"\ndepht = 50\n").unwrap_err().to_string();
    assert!(e.contains("depht"), "{e}");
    assert!(toml::from_str::<DataSpec>("kind = \"curve\"\ntargte = \"abs\"\n").is_err());
    assert!(toml::from_str::<DataSpec>("kind = \"cube\"\n").is_err());
    // A spec survives a round trip through TOML.
    let spec = DataSpec::parse("surface:shell").unwrap();
    assert_eq!(toml::from_str::<DataSpec>(&toml::to_string(&spec).unwrap()).unwrap(), spec);
}

fn small_specs() -> Vec<DataSpec> {
    vec![
        DataSpec::Curve(CurveSpec::default()),
        DataSpec::Surface(SurfaceSpec::shape(SurfaceShape::Sphere)),
        DataSpec::Surface(SurfaceSpec::shape(SurfaceShape::Shell)),
        DataSpec::Mandelbrot(MandelbrotSpec { samples: Some(1000), depth: 50, ..MandelbrotSpec::default() }),
    ]
}

#[test]
fn fill_batch_is_deterministic_and_leaves_fixed_set_alone() {
    for spec in small_specs() {
        let d = spec.build(42).unwrap();
        let (di, dout) = (d.input_dims(), d.output_dims());
        let before = d.training_points().map(|(x, y)| (x.to_vec(), y.to_vec())).unwrap();
        let batch = |seed| {
            let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
            let (mut x, mut y) = (vec![f32::NAN; 64 * di], vec![f32::NAN; 64 * dout]);
            d.fill_batch(&mut rng, &mut x, &mut y);
            (x, y)
        };
        let (x1, y1) = batch(1);
        assert_eq!((x1.clone(), y1.clone()), batch(1), "{}", d.name());
        assert_ne!(x1, batch(2).0, "{}", d.name());
        // Every batch row is a row of the fixed set.
        let (fx, fy) = d.training_points().unwrap();
        for (bx, by) in x1.chunks(di).zip(y1.chunks(dout)) {
            let found = fx.chunks(di).zip(fy.chunks(dout)).any(|(a, b)| a == bx && b == by);
            assert!(found, "{}: batch row not in the fixed set", d.name());
        }
        let after = d.training_points().unwrap();
        assert_eq!((before.0.as_slice(), before.1.as_slice()), after, "{}", d.name());
        // Same seed, same data set.
        let again = spec.build(42).unwrap();
        assert_eq!(again.training_points(), d.training_points(), "{}", d.name());
    }
}

#[test]
fn truth_agrees_with_eval_set() {
    for spec in small_specs() {
        let d = spec.build(3).unwrap();
        let ev = d.eval_set();
        let mut out = vec![0.0; ev.targets.len()];
        assert!(d.truth(&ev.inputs, &mut out), "{}", d.name());
        for (a, b) in out.iter().zip(ev.targets.iter()) {
            assert!((a - b).abs() < 1e-5, "{}: {a} vs {b}", d.name());
        }
        assert_eq!(d.domain().len(), d.input_dims());
        assert!(d.metrics(&ev.targets, &ev.targets).mse == 0.0);
    }
}

#[test]
fn build_errors_are_one_line() {
    let specs = [
        DataSpec::Mandelbrot(MandelbrotSpec { depth: 0, ..MandelbrotSpec::default() }),
        DataSpec::Image(ImageSpec::new("/nonexistent/foo.png")),
        DataSpec::Curve(CurveSpec { target: Some("sin(".into()), ..CurveSpec::default() }),
        DataSpec::Surface(SurfaceSpec::default()),
    ];
    for s in specs {
        let e = s.build(1).err().expect("must fail").to_string();
        assert!(!e.is_empty() && !e.contains('\n'), "{e}");
    }
}
