use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use approxlab_view::*;

fn close(got: [u8; 3], want: [u8; 3], tol: i32) -> bool {
    got.iter().zip(want).all(|(&g, w)| (g as i32 - w as i32).abs() <= tol)
}

fn assert_colour(cm: Colormap, v: f32, want: [u8; 3], tol: i32) {
    let got = cm.map(v);
    assert!(close(got, want, tol), "{cm}({v}) = {got:?}, want {want:?} +-{tol}");
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("approxlab-view-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------- colormaps

#[test]
fn colormap_perceptual_maps_match_matplotlib() {
    assert_colour(Colormap::Inferno, 0.0, [0, 0, 4], 0);
    assert_colour(Colormap::Inferno, 1.0, [252, 255, 164], 1);
    assert_colour(Colormap::Inferno, 0.5, [188, 55, 84], 1);
    assert_colour(Colormap::Viridis, 0.0, [68, 1, 84], 1);
    assert_colour(Colormap::Viridis, 0.5, [33, 145, 140], 1);
    assert_colour(Colormap::Viridis, 1.0, [253, 231, 37], 1);
    assert_colour(Colormap::Magma, 0.0, [0, 0, 4], 1);
    assert_colour(Colormap::Magma, 1.0, [252, 253, 191], 1);
    assert_colour(Colormap::Plasma, 0.0, [13, 8, 135], 1);
    assert_colour(Colormap::Plasma, 1.0, [240, 249, 33], 1);
    assert_colour(Colormap::Gray, 0.0, [0, 0, 0], 0);
    assert_colour(Colormap::Gray, 0.5, [128, 128, 128], 1);
    assert_colour(Colormap::Gray, 1.0, [255, 255, 255], 0);
}

// matplotlib samples these maps through a 256-entry table and truncates to bytes, so
// its values can differ from the exact piecewise-linear definition by up to ~2.
#[test]
fn colormap_bone_and_gist_heat_match_matplotlib() {
    assert_colour(Colormap::Bone, 0.0, [0, 0, 0], 0);
    assert_colour(Colormap::Bone, 1.0, [255, 255, 255], 0);
    // matplotlib: cm.bone(0.25) = (0.2196, 0.2196, 0.3055), cm.bone(0.5) = (0.4392, 0.4841, 0.5642)
    assert_colour(Colormap::Bone, 0.25, [56, 56, 78], 2);
    assert_colour(Colormap::Bone, 0.5, [112, 123, 144], 2);
    // matplotlib: cm.bone(0.75) = (0.6563, 0.7804, 0.7804)
    assert_colour(Colormap::Bone, 0.75, [167, 199, 199], 2);
    assert_colour(Colormap::GistHeat, 0.0, [0, 0, 0], 0);
    assert_colour(Colormap::GistHeat, 1.0, [255, 255, 255], 0);
    assert_colour(Colormap::GistHeat, 0.5, [192, 0, 0], 2);
    assert_colour(Colormap::GistHeat, 0.75, [255, 129, 3], 3);
}

#[test]
fn colormap_clamps_and_shows_nan() {
    for cm in Colormap::ALL {
        assert_eq!(cm.map(-3.0), cm.map(0.0), "{cm}");
        assert_eq!(cm.map(7.0), cm.map(1.0), "{cm}");
        assert_eq!(cm.map(f32::INFINITY), cm.map(1.0), "{cm}");
        assert_eq!(cm.map(f32::NAN), [255, 0, 255], "{cm}");
        assert_ne!(cm.map(0.0), cm.map(1.0), "{cm}");
    }
}

#[test]
fn colormap_parse_round_trips_and_unknown_lists_names() {
    for cm in Colormap::ALL {
        assert_eq!(Colormap::parse(cm.name()), Ok(cm));
    }
    assert_eq!(Colormap::parse("Viridis"), Ok(Colormap::Viridis));
    assert_eq!(Colormap::default(), Colormap::Inferno);
    let msg = Colormap::parse("jet").unwrap_err().to_string();
    assert!(msg.contains("jet"), "{msg}");
    for name in Colormap::NAMES {
        assert!(msg.contains(name), "{msg} lacks {name}");
    }
    assert!(!msg.contains('\n'));
}

// ---------------------------------------------------------------- windows

#[test]
fn window_parse_accepts_valid_text() {
    let w = Window::parse("-2, 1,-1.5,1.5").unwrap();
    assert_eq!(w, Window::new(-2.0, 1.0, -1.5, 1.5).unwrap());
    let w2: Window = w.to_string().parse().unwrap();
    assert_eq!(w, w2);
}

#[test]
fn window_parse_errors_name_input_and_form() {
    for bad in ["1,2,3", "1,2,3,4,5", "a,1,0,1", "", "1,,0,1"] {
        let msg = Window::parse(bad).unwrap_err().to_string();
        assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        assert!(msg.contains("X0,X1,Y0,Y1"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    for bad in ["1,0,0,1", "0,1,1,1", "0,inf,0,1", "NaN,1,0,1"] {
        let e = Window::parse(bad);
        assert!(e.is_err(), "{bad} accepted");
        assert!(!e.unwrap_err().to_string().contains('\n'));
    }
    assert!(Window { x0: 0.0, x1: 1.0, y0: 2.0, y1: 1.0 }.validate().is_err());
}

#[test]
fn window_pixel_centres_have_y_up() {
    let w = Window::new(0.0, 4.0, 0.0, 2.0).unwrap();
    let p = w.pixel_centers(4, 2, 0..2);
    assert_eq!(p.len(), 16);
    // top-left pixel centre: x = 0.5, y = 1.5 (the top row is at the y1 end)
    assert_eq!(&p[0..2], &[0.5, 1.5]);
    assert_eq!(&p[6..8], &[3.5, 1.5]);
    assert_eq!(&p[8..10], &[0.5, 0.5]);
    assert_eq!(w.pixel_centers(4, 2, 1..2), p[8..].to_vec());
}

#[test]
fn image_domain_native_coords_hit_pixels() {
    let d = ImageDomain::new(3, 5, ImageCoords::Index);
    let p = d.pixel_coords(5, 3, 0..3);
    assert_eq!(&p[0..2], &[0.0, 0.0]);
    // (row 2, col 4): the bottom-right pixel
    assert_eq!(&p[28..30], &[2.0, 4.0]);
    let d = ImageDomain::new(3, 5, ImageCoords::SignedCorners);
    let p = d.pixel_coords(5, 3, 0..3);
    assert_eq!(&p[0..2], &[-1.0, -1.0]);
    assert_eq!(&p[28..30], &[1.0, 1.0]);
    let d = ImageDomain::new(4, 4, ImageCoords::UnitCenters);
    let p = d.pixel_coords(8, 8, 0..1);
    assert!((p[0] - 1.0 / 16.0).abs() < 1e-6 && (p[1] - 1.0 / 16.0).abs() < 1e-6);
}

// ---------------------------------------------------------------- fields

fn fx(p: &[f32], out: &mut [f32]) {
    for (o, q) in out.iter_mut().zip(p.chunks_exact(2)) {
        *o = q[0];
    }
}

fn fy(p: &[f32], out: &mut [f32]) {
    for (o, q) in out.iter_mut().zip(p.chunks_exact(2)) {
        *o = q[1];
    }
}

#[test]
fn render_scalar_x_is_left_to_right_gradient() {
    let w = Window::new(0.0, 1.0, 0.0, 1.0).unwrap();
    let img = render_scalar(&fx, w, 64, 16, Colormap::Gray, DEFAULT_TILE_ROWS);
    assert_eq!(img.dimensions(), (64, 16));
    for y in 0..16 {
        let row: Vec<u8> = (0..64).map(|x| img.get_pixel(x, y).0[0]).collect();
        assert!(row.windows(2).all(|p| p[0] < p[1]), "row {y} not increasing");
        assert!(row[0] <= 3 && row[63] >= 252, "{row:?}");
        assert_eq!(row, (0..64).map(|x| img.get_pixel(x, 0).0[0]).collect::<Vec<_>>());
    }
}

#[test]
fn render_scalar_y_is_up() {
    let w = Window::new(-1.0, 1.0, 10.0, 11.0).unwrap();
    let img = render_scalar_range(&fy, w, 8, 32, Colormap::Gray, (10.0, 11.0), 5);
    let top = img.get_pixel(3, 0).0[0];
    let bottom = img.get_pixel(3, 31).0[0];
    assert!(top >= 250 && bottom <= 5, "top {top} bottom {bottom}");
}

#[test]
fn render_scalar_tiled_equals_untiled() {
    let f = |p: &[f32], out: &mut [f32]| {
        for (o, q) in out.iter_mut().zip(p.chunks_exact(2)) {
            *o = 0.5 + 0.5 * (3.0 * q[0] * q[1]).sin();
        }
    };
    let w = Window::new(-2.0, 1.0, -1.5, 1.5).unwrap();
    let whole = render_scalar(&f, w, 97, 53, Colormap::Viridis, 53);
    for tile in [1, 7, 64] {
        assert_eq!(whole, render_scalar(&f, w, 97, 53, Colormap::Viridis, tile), "tile {tile}");
    }
}

#[test]
fn render_scalar_batches_never_exceed_one_tile() {
    let max_n = AtomicUsize::new(0);
    let f = |p: &[f32], out: &mut [f32]| {
        max_n.fetch_max(p.len() / 2, Ordering::Relaxed);
        assert_eq!(p.len() / 2, out.len());
        out.fill(0.5);
    };
    let w = Window::new(0.0, 1.0, 0.0, 1.0).unwrap();
    let img = render_scalar(&f, w, 7680, 200, Colormap::Inferno, 64);
    assert_eq!(img.dimensions(), (7680, 200));
    assert_eq!(max_n.load(Ordering::Relaxed), 64 * 7680);
}

#[test]
fn render_rgb_and_image_helpers() {
    // Gray image whose value is the row in [0, 1]: top black, bottom white.
    let d = ImageDomain::new(5, 3, ImageCoords::UnitCorners);
    let img = render_image_native(&fx, Channels::Gray, &d, 2);
    assert_eq!(img.dimensions(), (3, 5));
    assert_eq!(img.get_pixel(1, 0).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(1, 4).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(2, 2).0, [128, 128, 128]);

    // RGB function (row, col, NaN-free constant blue); scaled render keeps the layout.
    let rgb = |p: &[f32], out: &mut [f32]| {
        for (o, q) in out.chunks_exact_mut(3).zip(p.chunks_exact(2)) {
            o.copy_from_slice(&[q[0], q[1], 1.0]);
        }
    };
    let big = render_image(&rgb, Channels::Rgb, &d, 30, 50, 8);
    assert_eq!(big.dimensions(), (30, 50));
    let tl = big.get_pixel(0, 0).0;
    let br = big.get_pixel(29, 49).0;
    assert!(tl[0] < 10 && tl[1] < 10 && tl[2] == 255, "{tl:?}");
    assert!(br[0] > 245 && br[1] > 245 && br[2] == 255, "{br:?}");

    let nan = |_: &[f32], out: &mut [f32]| out.fill(f32::NAN);
    let w = Window::new(0.0, 1.0, 0.0, 1.0).unwrap();
    let img = render_rgb(&nan, Channels::Rgb, w, 4, 4, 64);
    assert!(img.pixels().all(|p| p.0 == [255, 0, 255]));
}

#[test]
fn render_error_maps_absolute_difference() {
    let w = Window::new(0.0, 1.0, 0.0, 1.0).unwrap();
    let shifted = |p: &[f32], out: &mut [f32]| {
        fx(p, out);
        out.iter_mut().for_each(|v| *v -= 0.5);
    };
    let same = render_error(&fx, &fx, 1, w, 16, 8, Colormap::Inferno, 1.0, 3);
    assert!(same.pixels().all(|p| p.0 == Colormap::Inferno.map(0.0)));
    let half = render_error(&shifted, &fx, 1, w, 16, 8, Colormap::Gray, 1.0, 3);
    assert!(half.pixels().all(|p| close(p.0, [128, 128, 128], 1)));
    let sat = render_error(&shifted, &fx, 1, w, 16, 8, Colormap::Gray, 0.25, 3);
    assert!(sat.pixels().all(|p| p.0 == [255, 255, 255]));
}

// ---------------------------------------------------------------- composition and text

#[test]
fn hstack_places_panels_with_gap() {
    let a = RgbImage::from_pixel(10, 5, image::Rgb([255, 0, 0]));
    let b = RgbImage::from_pixel(4, 8, image::Rgb([0, 255, 0]));
    let s = hstack(&[&a, &b], 3);
    assert_eq!(s.dimensions(), (17, 8));
    assert_eq!(s.get_pixel(9, 4).0, [255, 0, 0]);
    assert_eq!(s.get_pixel(11, 0).0, PANEL_BACKGROUND);
    assert_eq!(s.get_pixel(13, 7).0, [0, 255, 0]);
    assert_eq!(s.get_pixel(0, 6).0, PANEL_BACKGROUND);
    let v = vstack(&[&a, &b], 2);
    assert_eq!(v.dimensions(), (10, 15));
    assert_eq!(v.get_pixel(0, 7).0, [0, 255, 0]);
}

#[test]
fn caption_bar_draws_text_with_embedded_font() {
    let bar = caption_bar("learned", 200).unwrap();
    assert_eq!(bar.dimensions(), (200, CAPTION_BAR_HEIGHT));
    let lit = bar.pixels().filter(|p| p.0[0] > 150).count();
    assert!(lit > 30, "only {lit} text pixels");
    // Text sits inside the bar, not clipped at its top or bottom edge.
    let rows: Vec<u32> = bar.enumerate_pixels().filter(|p| p.2 .0[0] > 150).map(|p| p.1).collect();
    let (top, bottom) = (*rows.iter().min().unwrap(), *rows.iter().max().unwrap());
    assert!(top >= 3 && bottom <= CAPTION_BAR_HEIGHT - 3, "text rows {top}..={bottom}");
    // Text stays near the left where it was placed.
    assert!((120..200).all(|x| (0..CAPTION_BAR_HEIGHT).all(|y| bar.get_pixel(x, y).0 == PANEL_BACKGROUND)));
    let panel = RgbImage::from_pixel(200, 100, image::Rgb([1, 2, 3]));
    let labelled = label_panel(&panel, "truth").unwrap();
    assert_eq!(labelled.dimensions(), (200, 100 + CAPTION_BAR_HEIGHT));
}

// ---------------------------------------------------------------- curve plot

#[test]
fn plot_curve_decodes_with_requested_size() {
    let f = |x: &[f32], y: &mut [f32]| {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v.sin();
        }
    };
    let learned = sample_curve(&f, -3.0, 3.0, 400);
    let mut truth = learned.clone();
    truth.iter_mut().for_each(|p| p.1 *= 1.1);
    let points: Vec<(f32, f32)> = (0..20).map(|i| (-3.0 + 0.3 * i as f32, 0.1 * i as f32 - 1.0)).collect();
    let mut spec = CurveSpec::new(&learned);
    spec.truth = Some(&truth);
    spec.points = &points;
    spec.caption = "step 1200  loss 1.2e-3  lr 1e-3".into();
    spec.width = 640;
    spec.height = 480;
    let img = plot_curve(&spec).unwrap();

    let dir = scratch_dir("plot");
    let path = dir.join("curve.png");
    write_png_atomic(&path, &img).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (640, 480));
    let first = back.get_pixel(0, 0).0;
    assert!(back.pixels().any(|p| p.0 != first), "constant image");
    // The learned line's blue is present.
    assert!(back.pixels().any(|p| close(p.0, [31, 119, 180], 10)));
    // So are the red training points.
    assert!(back.pixels().any(|p| close(p.0, [214, 39, 40], 10)));
    std::fs::remove_dir_all(&dir).unwrap();

    // Default size, NaN samples and no truth must not fail.
    let mut broken = learned.clone();
    broken[100].1 = f32::NAN;
    broken[101].1 = f32::INFINITY;
    let img = plot_curve(&CurveSpec::new(&broken)).unwrap();
    assert_eq!(img.dimensions(), (800, 600));
}

// ---------------------------------------------------------------- png output

#[test]
fn write_png_atomic_round_trips_and_leaves_no_temp() {
    let dir = scratch_dir("png");
    let path = dir.join("frame.png");
    let img = RgbImage::from_fn(37, 19, |x, y| image::Rgb([x as u8 * 7, y as u8 * 13, (x ^ y) as u8]));
    write_png_atomic(&path, &img).unwrap();
    // Overwrite: the second write replaces the first atomically.
    let img2 = RgbImage::from_fn(37, 19, |x, y| image::Rgb([y as u8, x as u8, 5]));
    write_png_atomic(&path, &img2).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["frame.png".to_string()]);
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back, img2);
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("no-such-dir").join("x.png");
    let msg = write_png_atomic(&missing, &img).unwrap_err().to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

// ---------------------------------------------------------------- surfaces

const R: f32 = 3.0;

fn sphere(p: &[f32], out: &mut [f32]) {
    for (o, q) in out.chunks_exact_mut(3).zip(p.chunks_exact(2)) {
        let (u, v) = (q[0], q[1]);
        o.copy_from_slice(&[R * u.cos() * v.cos(), R * u.cos() * v.sin(), R * u.sin()]);
    }
}

fn sphere_spec() -> SurfaceSpec<'static> {
    let mut spec = SurfaceSpec::new(
        &sphere,
        (-std::f32::consts::FRAC_PI_2, std::f32::consts::FRAC_PI_2),
        (0.0, 2.0 * std::f32::consts::PI),
    );
    spec.bounds = Some(Bounds { min: [-R; 3], max: [R; 3] });
    spec.camera = Camera { yaw: 0.7, pitch: 0.4, ..Camera::default() };
    spec.width = 640;
    spec.height = 480;
    spec.background = [0, 255, 0];
    spec
}

#[test]
fn render_surface_sphere_silhouette_matches_projected_disc() {
    let spec = sphere_spec();
    let img = render_surface(&spec).unwrap();
    assert_eq!(img.dimensions(), (640, 480));

    let covered: Vec<(u32, u32)> =
        img.enumerate_pixels().filter(|(_, _, p)| p.0 != [0, 255, 0]).map(|(x, y, _)| (x, y)).collect();
    let area = covered.len() as f64;

    // A sphere seen from distance d subtends a cone of half-angle asin(R / d); aimed
    // at its centre, the silhouette is a disc of radius focal * tan(that angle).
    let view = spec.camera.view(spec.bounds.as_ref().unwrap(), 640, 480);
    let d = view.distance() as f64;
    let r_px = view.focal_px as f64 * (R as f64 / d).asin().tan();
    let expected = std::f64::consts::PI * r_px * r_px;
    let rel = (area - expected).abs() / expected;
    assert!(rel < 0.03, "area {area} expected {expected:.0} ({:.2}%)", 100.0 * rel);

    // Roughly circular and centred: equal extents, centroid at the image centre.
    let (xs, ys): (Vec<u32>, Vec<u32>) = covered.iter().copied().unzip();
    let w = (xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1) as f64;
    let h = (ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1) as f64;
    assert!((w - 2.0 * r_px).abs() < 3.0 && (h - 2.0 * r_px).abs() < 3.0, "{w}x{h} vs {}", 2.0 * r_px);
    let cx = xs.iter().map(|&x| x as f64 + 0.5).sum::<f64>() / area;
    let cy = ys.iter().map(|&y| y as f64 + 0.5).sum::<f64>() / area;
    assert!((cx - 320.0).abs() < 1.0 && (cy - 240.0).abs() < 1.0, "centroid {cx},{cy}");

    // Lit, not flat: the shading varies over the disc.
    let first = img.get_pixel(320, 240).0;
    assert!(covered.iter().any(|&(x, y)| img.get_pixel(x, y).0 != first));
}

#[test]
fn render_surface_draws_points_truth_and_caption() {
    let plain = render_surface(&sphere_spec()).unwrap();

    // Points on the sphere facing the camera are visible; those behind it are hidden.
    let mut spec = sphere_spec();
    let view = spec.camera.view(spec.bounds.as_ref().unwrap(), 640, 480);
    let toward = view.forward.map(|c| -c * R);
    let away = view.forward.map(|c| c * R);
    let pts = [toward, away];
    spec.points = &pts;
    let with_pts = render_surface(&spec).unwrap();
    assert_eq!(with_pts.get_pixel(320, 240).0, [235, 45, 45]);
    let changed = with_pts.pixels().zip(plain.pixels()).filter(|(a, b)| a != b).count();
    // One dot of radius ~2 px: the hidden point must not add a second one.
    assert!((5..40).contains(&changed), "{changed} pixels changed");

    let mut spec = sphere_spec();
    spec.truth = Some(&sphere);
    spec.caption = "step 10  loss 1e-2".into();
    let wired = render_surface(&spec).unwrap();
    let white = wired.pixels().filter(|p| p.0 == [250, 250, 250]).count();
    assert!(white > 500, "{white} wire pixels");
    let caption_px = (0..200)
        .flat_map(|x| (0..28).map(move |y| (x, y)))
        .filter(|&(x, y)| wired.get_pixel(x, y).0 != [0, 255, 0])
        .count();
    assert!(caption_px > 30, "caption missing");

    // Non-finite output must not panic; an all-NaN surface shows only the background.
    let nan = |_: &[f32], out: &mut [f32]| out.fill(f32::NAN);
    let mut spec = sphere_spec();
    spec.f = &nan;
    let img = render_surface(&spec).unwrap();
    assert!(img.pixels().all(|p| p.0 == [0, 255, 0]));
}
