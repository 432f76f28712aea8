use image::{Rgb, RgbImage};

use crate::error::ViewError;
use crate::text::draw_text;
use crate::Func;

type V3 = [f32; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
fn norm(a: V3) -> f32 {
    dot(a, a).sqrt()
}
fn normalize(a: V3) -> Option<V3> {
    let n = norm(a);
    (n > 1e-12 && n.is_finite()).then(|| scale(a, 1.0 / n))
}
fn finite(a: V3) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// An axis-aligned box in 3-D; the camera frames its bounding sphere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: [f32; 3],
    pub max: [f32; 3],
}

impl Bounds {
    /// The box around the finite points, `None` when there are none.
    pub fn from_points<'p>(pts: impl IntoIterator<Item = &'p [f32; 3]>) -> Option<Bounds> {
        let mut b: Option<Bounds> = None;
        for p in pts.into_iter().filter(|p| finite(**p)) {
            let bb = b.get_or_insert(Bounds { min: *p, max: *p });
            for (k, &c) in p.iter().enumerate() {
                bb.min[k] = bb.min[k].min(c);
                bb.max[k] = bb.max[k].max(c);
            }
        }
        b
    }

    /// The centre of the box.
    pub fn center(&self) -> [f32; 3] {
        scale(add(self.min, self.max), 0.5)
    }

    /// Half the diagonal: the radius of the sphere around the box.
    pub fn radius(&self) -> f32 {
        0.5 * norm(sub(self.max, self.min))
    }
}

/// A perspective camera orbiting the bounding box centre, `z` up.
///
/// The distance depends only on the bounds and the field of view, so frames of one
/// run (same bounds) are comparable while `yaw` turns slowly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Angle around the `z` axis, radians; 0 puts the eye on the `+x` side.
    pub yaw: f32,
    /// Elevation above the `xy` plane, radians (clamped to +-89 degrees).
    pub pitch: f32,
    /// Vertical field of view, radians.
    pub fov_y: f32,
    /// Distance as a multiple of the one at which the bounding sphere exactly fills the
    /// image height; above 1 leaves a margin.
    pub distance_scale: f32,
}

impl Default for Camera {
    fn default() -> Self {
        Camera { yaw: 0.6, pitch: 0.45, fov_y: 35f32.to_radians(), distance_scale: 1.05 }
    }
}

/// A camera placed for particular bounds and image size: everything needed to project.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub eye: [f32; 3],
    pub target: [f32; 3],
    /// Camera axes in world space; `forward` points from the eye to the target.
    pub right: [f32; 3],
    pub up: [f32; 3],
    pub forward: [f32; 3],
    /// Focal length in pixels: a camera-space point `(x, y, z)` lands at
    /// `(width / 2 + focal_px * x / z, height / 2 - focal_px * y / z)`.
    pub focal_px: f32,
    pub width: u32,
    pub height: u32,
}

impl Camera {
    /// Places the camera for `bounds` and a `width` x `height` image.
    pub fn view(&self, bounds: &Bounds, width: u32, height: u32) -> View {
        let target = bounds.center();
        let radius = if bounds.radius() > 0.0 && bounds.radius().is_finite() { bounds.radius() } else { 1.0 };
        let half_fov = (0.5 * self.fov_y).clamp(0.01, 1.5);
        let distance = radius / half_fov.sin() * self.distance_scale.max(1e-3);
        // At the poles "right" is undefined (forward parallel to z).
        let pitch = self.pitch.clamp(-89f32.to_radians(), 89f32.to_radians());
        let dir = [pitch.cos() * self.yaw.cos(), pitch.cos() * self.yaw.sin(), pitch.sin()];
        let eye = add(target, scale(dir, distance));
        let forward = scale(dir, -1.0);
        let right = normalize(cross(forward, [0.0, 0.0, 1.0])).unwrap_or([1.0, 0.0, 0.0]);
        let up = cross(right, forward);
        View { eye, target, right, up, forward, focal_px: 0.5 * height as f32 / half_fov.tan(), width, height }
    }
}

impl View {
    /// Camera-space coordinates `(x right, y up, z depth)` of a world point.
    pub fn to_camera(&self, p: [f32; 3]) -> [f32; 3] {
        let d = sub(p, self.eye);
        [dot(d, self.right), dot(d, self.up), dot(d, self.forward)]
    }

    /// Screen position (pixels, y down) and depth of a world point, `None` behind the
    /// near plane.
    pub fn project(&self, p: [f32; 3]) -> Option<(f32, f32, f32)> {
        let c = self.to_camera(p);
        if !finite(c) || c[2] <= self.near() {
            return None;
        }
        Some((
            0.5 * self.width as f32 + self.focal_px * c[0] / c[2],
            0.5 * self.height as f32 - self.focal_px * c[1] / c[2],
            c[2],
        ))
    }

    /// Distance from the eye to the target.
    pub fn distance(&self) -> f32 {
        norm(sub(self.target, self.eye))
    }

    fn near(&self) -> f32 {
        1e-3 * self.distance()
    }
}

/// What [`render_surface`] draws. Build with [`SurfaceSpec::new`] and set fields.
#[derive(Clone)]
pub struct SurfaceSpec<'a> {
    /// The learned surface, `[n, 2]` of `(u, v)` to `[n, 3]` of `(x, y, z)`.
    pub f: Func<'a>,
    pub u_range: (f32, f32),
    pub v_range: (f32, f32),
    /// Samples along `u` and `v` for the mesh (default 96 x 96).
    pub grid: (u32, u32),
    /// The true surface, drawn as a thin wireframe.
    pub truth: Option<Func<'a>>,
    /// Wireframe lines of constant `u` and of constant `v` (default 16 x 16).
    pub truth_lines: (u32, u32),
    /// Sample points (e.g. the training targets), drawn as small depth-tested dots.
    pub points: &'a [[f32; 3]],
    /// The box the camera frames. `None` uses the points, else the truth, else the
    /// learned mesh; pass a fixed box to keep every frame of a run framed alike.
    pub bounds: Option<Bounds>,
    pub camera: Camera,
    /// One line drawn at the top left, e.g. `"step 1200  loss 1.2e-3"`; empty for none.
    pub caption: String,
    pub width: u32,
    pub height: u32,
    pub background: [u8; 3],
}

impl<'a> SurfaceSpec<'a> {
    /// A spec with a 96 x 96 mesh, default camera, 800 x 600, dark background.
    pub fn new(f: Func<'a>, u_range: (f32, f32), v_range: (f32, f32)) -> Self {
        SurfaceSpec {
            f,
            u_range,
            v_range,
            grid: (96, 96),
            truth: None,
            truth_lines: (16, 16),
            points: &[],
            bounds: None,
            camera: Camera::default(),
            caption: String::new(),
            width: 800,
            height: 600,
            background: crate::compose::PANEL_BACKGROUND,
        }
    }
}

const AMBIENT: f32 = 0.22;
// Two tones so that the two sides of an open or self-intersecting surface can be told
// apart while both are lit (two-sided lighting).
const FRONT_COLOUR: V3 = [120.0, 170.0, 230.0];
const BACK_COLOUR: V3 = [230.0, 160.0, 100.0];
const WIRE_COLOUR: [u8; 3] = [250, 250, 250];
const POINT_COLOUR: [u8; 3] = [235, 45, 45];
// Wires and dots lie on (or near) the surface; this fraction of depth keeps them from
// being hidden by the mesh they sit on.
const DEPTH_BIAS: f32 = 0.02;

/// Evaluates `f` at `nu` x `nv` grid points (u outer, v inner), one batched call.
fn eval_grid(f: Func<'_>, u: (f32, f32), v: (f32, f32), nu: u32, nv: u32) -> Vec<V3> {
    let lerp = |r: (f32, f32), i: u32, n: u32| {
        let t = if n > 1 { i as f32 / (n - 1) as f32 } else { 0.5 };
        r.0 + t * (r.1 - r.0)
    };
    let mut pts = Vec::with_capacity(nu as usize * nv as usize * 2);
    for i in 0..nu {
        for j in 0..nv {
            pts.push(lerp(u, i, nu));
            pts.push(lerp(v, j, nv));
        }
    }
    let mut out = vec![f32::NAN; nu as usize * nv as usize * 3];
    f(&pts, &mut out);
    out.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

struct Raster {
    img: RgbImage,
    /// 1/z per pixel (0 = nothing drawn); 1/z is affine in screen space, so it can be
    /// interpolated linearly across a triangle.
    inv_z: Vec<f32>,
}

impl Raster {
    fn new(width: u32, height: u32, background: [u8; 3]) -> Self {
        Raster {
            img: RgbImage::from_pixel(width, height, Rgb(background)),
            inv_z: vec![0.0; width as usize * height as usize],
        }
    }

    fn triangle(&mut self, v: [(f32, f32, f32); 3], shade: [f32; 3], colour: V3) {
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        let area = (v[1].0 - v[0].0) * (v[2].1 - v[0].1) - (v[2].0 - v[0].0) * (v[1].1 - v[0].1);
        if area.abs() < 1e-12 {
            return;
        }
        let minx = v.iter().map(|p| p.0).fold(f32::INFINITY, f32::min).floor().max(0.0) as i64;
        let maxx = (v.iter().map(|p| p.0).fold(f32::NEG_INFINITY, f32::max).ceil() as i64).min(w - 1);
        let miny = v.iter().map(|p| p.1).fold(f32::INFINITY, f32::min).floor().max(0.0) as i64;
        let maxy = (v.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max).ceil() as i64).min(h - 1);
        let inv_area = 1.0 / area;
        let iz = [1.0 / v[0].2, 1.0 / v[1].2, 1.0 / v[2].2];
        for py in miny..=maxy {
            let y = py as f32 + 0.5;
            for px in minx..=maxx {
                let x = px as f32 + 0.5;
                // Barycentric weights; the sign of `area` absorbs the winding, so both
                // orientations (front and back faces) are filled.
                let b0 = ((v[1].0 - x) * (v[2].1 - y) - (v[2].0 - x) * (v[1].1 - y)) * inv_area;
                let b1 = ((v[2].0 - x) * (v[0].1 - y) - (v[0].0 - x) * (v[2].1 - y)) * inv_area;
                let b2 = 1.0 - b0 - b1;
                if b0 < 0.0 || b1 < 0.0 || b2 < 0.0 {
                    continue;
                }
                let z = b0 * iz[0] + b1 * iz[1] + b2 * iz[2];
                let idx = (py * w + px) as usize;
                if z <= self.inv_z[idx] {
                    continue;
                }
                self.inv_z[idx] = z;
                let s = b0 * shade[0] + b1 * shade[1] + b2 * shade[2];
                let c = scale(colour, s);
                self.img.put_pixel(px as u32, py as u32, Rgb([c[0] as u8, c[1] as u8, c[2] as u8]));
            }
        }
    }

    fn plot_biased(&mut self, px: i64, py: i64, depth: f32, colour: [u8; 3]) {
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        if px < 0 || py < 0 || px >= w || py >= h {
            return;
        }
        let idx = (py * w + px) as usize;
        if 1.0 / depth >= self.inv_z[idx] * (1.0 - DEPTH_BIAS) {
            self.img.put_pixel(px as u32, py as u32, Rgb(colour));
        }
    }

    fn line(&mut self, a: (f32, f32, f32), b: (f32, f32, f32), colour: [u8; 3]) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil();
        // A segment longer than a few screens is a wild vertex; not worth the time.
        if !(steps.is_finite()) || steps > 8.0 * (self.img.width() + self.img.height()) as f32 {
            return;
        }
        let n = steps.max(1.0) as i64;
        for k in 0..=n {
            let t = k as f32 / n as f32;
            let iz = (1.0 - t) / a.2 + t / b.2;
            self.plot_biased(
                (a.0 + t * (b.0 - a.0)).floor() as i64,
                (a.1 + t * (b.1 - a.1)).floor() as i64,
                1.0 / iz,
                colour,
            );
        }
    }

    fn dot(&mut self, p: (f32, f32, f32), radius: f32, colour: [u8; 3]) {
        let r = radius.ceil() as i64;
        let (cx, cy) = (p.0.floor() as i64, p.1.floor() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f32) <= radius * radius {
                    self.plot_biased(cx + dx, cy + dy, p.2, colour);
                }
            }
        }
    }
}

/// Renders a parametric surface `(u, v) -> (x, y, z)` with a software rasteriser: a
/// flat-coloured, Gouraud-lit (Lambert + ambient, two-sided) triangle mesh with a
/// z-buffer, seen by a perspective camera aimed at the bounding box centre; optional
/// depth-tested sample dots, optional truth wireframe and a caption.
///
/// Triangles with a non-finite vertex, or a vertex farther from the box centre than
/// the camera (it would sit around or behind the eye), are skipped.
pub fn render_surface(spec: &SurfaceSpec<'_>) -> Result<RgbImage, ViewError> {
    let (width, height) = (spec.width.max(1), spec.height.max(1));
    let mesh = Mesh::sample(spec);
    let wires = truth_wires(spec, &mesh);
    let bounds = spec
        .bounds
        .or_else(|| Bounds::from_points(spec.points))
        .or_else(|| Bounds::from_points(wires.iter().flatten()))
        .or_else(|| Bounds::from_points(&mesh.pts))
        .unwrap_or(Bounds { min: [-1.0; 3], max: [1.0; 3] });
    let viewpoint = Viewpoint::new(spec.camera.view(&bounds, width, height));

    let mut r = Raster::new(width, height, spec.background);
    draw_mesh(&mut r, &mesh, &viewpoint);
    draw_wires(&mut r, &wires, &viewpoint);
    draw_points(&mut r, spec.points, &viewpoint);

    let mut img = r.img;
    draw_text(&mut img, &spec.caption, 8, 6, 18.0, [235, 235, 235])?;
    Ok(img)
}

/// The learned surface sampled on its grid (u outer, v inner), with vertex normals.
struct Mesh {
    pts: Vec<V3>,
    /// `None` where the grid degenerates (e.g. a sphere's poles); the face normal
    /// stands in there.
    normals: Vec<Option<V3>>,
    nu: usize,
    nv: usize,
}

impl Mesh {
    fn sample(spec: &SurfaceSpec<'_>) -> Mesh {
        let (nu, nv) = (spec.grid.0.max(2), spec.grid.1.max(2));
        let pts = eval_grid(spec.f, spec.u_range, spec.v_range, nu, nv);
        let (nu, nv) = (nu as usize, nv as usize);
        let normals = vertex_normals(&pts, nu, nv);
        Mesh { pts, normals, nu, nv }
    }

    fn at(&self, i: usize, j: usize) -> V3 {
        self.pts[i * self.nv + j]
    }
}

/// Normals from central differences of the grid (one-sided at its edges), which
/// smooth the shading across triangles.
fn vertex_normals(pts: &[V3], nu: usize, nv: usize) -> Vec<Option<V3>> {
    let at = |i: usize, j: usize| pts[i * nv + j];
    (0..nu * nv)
        .map(|k| {
            let (i, j) = (k / nv, k % nv);
            let du = sub(at((i + 1).min(nu - 1), j), at(i.saturating_sub(1), j));
            let dv = sub(at(i, (j + 1).min(nv - 1)), at(i, j.saturating_sub(1)));
            normalize(cross(du, dv))
        })
        .collect()
}

/// Truth wireframe polylines: constant-u lines sampled along v, then constant-v lines,
/// each as finely sampled as the learned mesh so that both bend alike.
fn truth_wires(spec: &SurfaceSpec<'_>, mesh: &Mesh) -> Vec<Vec<V3>> {
    let mut wires: Vec<Vec<V3>> = Vec::new();
    if let Some(truth) = spec.truth {
        let (nu, nv) = (mesh.nu as u32, mesh.nv as u32);
        let (lu, lv) = (spec.truth_lines.0.max(2), spec.truth_lines.1.max(2));
        let along_v = eval_grid(truth, spec.u_range, spec.v_range, lu, nv);
        wires.extend(along_v.chunks(nv as usize).map(|c| c.to_vec()));
        let along_u = eval_grid(truth, spec.u_range, spec.v_range, nu, lv);
        wires.extend((0..lv as usize).map(|j| (0..nu as usize).map(|i| along_u[i * lv as usize + j]).collect()));
    }
    wires
}

/// A placed camera with the light and the limit that every drawn element is checked against.
struct Viewpoint {
    view: View,
    /// Geometry at least this far from the target would sit around or behind the eye.
    reach: f32,
    light: V3,
}

impl Viewpoint {
    fn new(view: View) -> Self {
        // A headlight above-left of the eye: lighting turns with the camera, so a slow
        // turn changes the viewpoint but not the brightness of what faces the viewer.
        let light = normalize(add(add(scale(view.right, -0.35), scale(view.up, 0.55)), scale(view.forward, -1.0)))
            .unwrap_or([0.0, 0.0, 1.0]);
        Viewpoint { view, reach: view.distance(), light }
    }

    fn usable(&self, p: V3) -> bool {
        finite(p) && norm(sub(p, self.view.target)) < self.reach
    }

    /// Two-sided Lambert plus ambient, so that back faces are lit too.
    fn shade(&self, normal: V3) -> f32 {
        AMBIENT + (1.0 - AMBIENT) * dot(normal, self.light).abs()
    }
}

fn draw_mesh(r: &mut Raster, mesh: &Mesh, viewpoint: &Viewpoint) {
    let view = &viewpoint.view;
    for i in 0..mesh.nu - 1 {
        for j in 0..mesh.nv - 1 {
            let quad = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            for tri in [[quad[0], quad[1], quad[2]], [quad[0], quad[2], quad[3]]] {
                let p = tri.map(|(a, b)| mesh.at(a, b));
                if !p.iter().all(|&q| viewpoint.usable(q)) {
                    continue;
                }
                let (Some(s0), Some(s1), Some(s2)) = (view.project(p[0]), view.project(p[1]), view.project(p[2]))
                else {
                    continue;
                };
                let Some(face_n) = normalize(cross(sub(p[1], p[0]), sub(p[2], p[0]))) else {
                    continue;
                };
                let facing_eye = dot(face_n, sub(view.eye, p[0])) > 0.0;
                let colour = if facing_eye { FRONT_COLOUR } else { BACK_COLOUR };
                let shade = tri.map(|(a, b)| viewpoint.shade(mesh.normals[a * mesh.nv + b].unwrap_or(face_n)));
                r.triangle([s0, s1, s2], shade, colour);
            }
        }
    }
}

fn draw_wires(r: &mut Raster, wires: &[Vec<V3>], viewpoint: &Viewpoint) {
    for wire in wires {
        for seg in wire.windows(2) {
            if !(viewpoint.usable(seg[0]) && viewpoint.usable(seg[1])) {
                continue;
            }
            if let (Some(a), Some(b)) = (viewpoint.view.project(seg[0]), viewpoint.view.project(seg[1])) {
                r.line(a, b, WIRE_COLOUR);
            }
        }
    }
}

fn draw_points(r: &mut Raster, points: &[V3], viewpoint: &Viewpoint) {
    // Dots grow with the image so that they stay visible in large renders.
    let dot_radius = (viewpoint.view.height as f32 / 250.0).max(2.0);
    for p in points {
        if !viewpoint.usable(*p) {
            continue;
        }
        if let Some(s) = viewpoint.view.project(*p) {
            r.dot(s, dot_radius, POINT_COLOUR);
        }
    }
}
