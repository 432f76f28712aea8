//! `cargo test -p approxlab-view --test gallery -- --ignored` writes sample renders to
//! `$APPROXLAB_VIEW_GALLERY` (default: the system temp dir) for a person to look at;
//! ignored by default because it only produces pictures, it checks nothing.

use std::path::{Path, PathBuf};

use approxlab_view::*;

#[test]
#[ignore]
fn gallery() {
    let dir = std::env::var_os("APPROXLAB_VIEW_GALLERY")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("approxlab-view-gallery"));
    std::fs::create_dir_all(&dir).unwrap();
    write_fields(&dir);
    write_colormaps(&dir);
    write_curves(&dir);
    write_surface(&dir);
}

/// Escape time of the Mandelbrot iteration, scaled to 0..1: a field with sharp detail.
fn mandelbrot(p: &[f32], out: &mut [f32]) {
    for (o, q) in out.iter_mut().zip(p.chunks_exact(2)) {
        let (cx, cy) = (q[0], q[1]);
        let (mut x, mut y, mut i) = (0f32, 0f32, 0);
        while i < 100 && x * x + y * y < 4.0 {
            (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
            i += 1;
        }
        *o = i as f32 / 100.0;
    }
}

/// Learned, truth and error panels side by side, the "learned" field standing in for
/// a model that has nearly caught up with a dimmed truth.
fn write_fields(dir: &Path) {
    let w = Window::parse("-2,1,-1.125,1.125").unwrap();
    let learned = render_scalar(&mandelbrot, w, 480, 360, Colormap::Inferno, DEFAULT_TILE_ROWS);
    let smooth = |p: &[f32], out: &mut [f32]| {
        mandelbrot(p, out);
        out.iter_mut().for_each(|v| *v = (*v * 0.9).min(1.0));
    };
    let truth = render_scalar(&smooth, w, 480, 360, Colormap::Inferno, DEFAULT_TILE_ROWS);
    let err = render_error(&smooth, &mandelbrot, 1, w, 480, 360, Colormap::GistHeat, 0.2, 64);
    let panels = [
        label_panel(&learned, "learned").unwrap(),
        label_panel(&truth, "truth").unwrap(),
        label_panel(&err, "error").unwrap(),
    ];
    let row = hstack(&[&panels[0], &panels[1], &panels[2]], 6);
    write_png_atomic(dir.join("fields.png"), &row).unwrap();
}

/// A labelled 0..1 ramp per colour map, stacked.
fn write_colormaps(dir: &Path) {
    let strip: Vec<RgbImage> = Colormap::ALL
        .iter()
        .map(|cm| {
            let ramp = |p: &[f32], out: &mut [f32]| {
                for (o, q) in out.iter_mut().zip(p.chunks_exact(2)) {
                    *o = q[0];
                }
            };
            let img = render_scalar(&ramp, Window::new(0.0, 1.0, 0.0, 1.0).unwrap(), 400, 30, *cm, 64);
            label_panel(&img, cm.name()).unwrap()
        })
        .collect();
    let refs: Vec<&RgbImage> = strip.iter().collect();
    write_png_atomic(dir.join("colormaps.png"), &vstack(&refs, 2)).unwrap();
}

/// A curve fit nearly done, and the same truth against an early, wild model.
fn write_curves(dir: &Path) {
    let f = |x: &[f32], y: &mut [f32]| {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (2.0 * v).sin() * (-0.1 * v * v).exp();
        }
    };
    let g = |x: &[f32], y: &mut [f32]| {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (2.0 * v).sin() * (-0.1 * v * v).exp() + 0.1 * (7.0 * v).cos();
        }
    };
    let t = sample_curve(&f, -4.0, 4.0, 500);
    let l = sample_curve(&g, -4.0, 4.0, 500);
    let pts: Vec<(f32, f32)> = t.iter().step_by(25).copied().collect();
    let mut spec = CurveSpec::new(&l);
    spec.truth = Some(&t);
    spec.points = &pts;
    spec.caption = "step 1200  loss 1.2e-3  lr 1e-3".into();
    write_png_atomic(dir.join("curve.png"), &plot_curve(&spec).unwrap()).unwrap();

    // An early, wild model: the y range follows the truth and the learned line is clipped.
    let wild: Vec<(f32, f32)> = l.iter().map(|&(x, y)| (x, 4.0 * y + 0.5 * x)).collect();
    spec.learned = &wild;
    spec.caption = "step 10  loss 2.3e+0".into();
    write_png_atomic(dir.join("curve_wild.png"), &plot_curve(&spec).unwrap()).unwrap();
}

fn torus(p: &[f32], out: &mut [f32]) {
    for (o, q) in out.chunks_exact_mut(3).zip(p.chunks_exact(2)) {
        let (u, v) = (q[0], q[1]);
        let r = 2.0 + 0.8 * v.cos();
        o.copy_from_slice(&[r * u.cos(), r * u.sin(), 0.8 * v.sin()]);
    }
}

/// A wobbly learned torus against the true one's wireframe and samples on it.
fn write_surface(dir: &Path) {
    let wobbly = |p: &[f32], out: &mut [f32]| {
        torus(p, out);
        for (o, q) in out.chunks_exact_mut(3).zip(p.chunks_exact(2)) {
            o[2] += 0.15 * (3.0 * q[0]).sin();
        }
    };
    let tau = std::f32::consts::TAU;
    let mut samples = vec![0f32; 200 * 3];
    let uv: Vec<f32> = (0..200).flat_map(|i| [i as f32 * 0.37 % tau, i as f32 * 0.91 % tau]).collect();
    torus(&uv, &mut samples);
    let pts: Vec<[f32; 3]> = samples.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let mut spec = SurfaceSpec::new(&wobbly, (0.0, tau), (0.0, tau));
    spec.truth = Some(&torus);
    spec.points = &pts;
    spec.caption = "step 500  loss 3.1e-3".into();
    write_png_atomic(dir.join("surface.png"), &render_surface(&spec).unwrap()).unwrap();
}
