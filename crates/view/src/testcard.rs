//! A generated picture to learn when no image is at hand: the scenes of the video need an image, and the
//! repository ships none. It mixes what separates the methods: smooth gradients (every network learns them), solid
//! shapes with sharp edges (plain networks blur them), rings whose frequency rises outwards and a checkerboard
//! (only high-frequency features such as Fourier's reach them), and a line of text.

use image::{Rgb, RgbImage};

use crate::error::ViewError;
use crate::text::draw_text;

/// Sub-samples per pixel side: edges are anti-aliased like a photograph's, not stair-stepped.
const SUPERSAMPLE: u32 = 3;

/// The test card at `width` x `height` pixels (at least 16 x 16).
pub fn test_card(width: u32, height: u32) -> Result<RgbImage, ViewError> {
    if width < 16 || height < 16 {
        return Err(ViewError::new(format!("test card {width}x{height}: expected at least 16x16 pixels")));
    }
    let n = SUPERSAMPLE;
    let mut img = RgbImage::from_fn(width, height, |x, y| {
        let mut sum = [0.0f64; 3];
        for sy in 0..n {
            for sx in 0..n {
                let u = (x as f64 + (sx as f64 + 0.5) / n as f64) / width as f64;
                let v = (y as f64 + (sy as f64 + 0.5) / n as f64) / height as f64;
                let c = colour_at(u, v);
                for k in 0..3 {
                    sum[k] += c[k];
                }
            }
        }
        let k = (n * n) as f64;
        Rgb(sum.map(|s| (s / k * 255.0).round().clamp(0.0, 255.0) as u8))
    });
    let size = (height as f64 * 0.11).max(8.0);
    draw_text(&mut img, "approxlab", (width as f64 * 0.05) as i32, (height as f64 * 0.04) as i32, size, [250; 3])?;
    Ok(img)
}

/// The card's colour at `(u, v)` in `[0, 1]^2` (u to the right, v down), channels in `[0, 1]`.
fn colour_at(u: f64, v: f64) -> [f64; 3] {
    let horizon = 0.58 + 0.05 * (u * 9.0).sin() * (u * 2.3).cos();
    // A sky that darkens upwards and ground that fades to the front: the smooth part.
    let mut c = if v < horizon {
        let t = v / horizon;
        [0.10 + 0.35 * t, 0.18 + 0.45 * t, 0.45 + 0.40 * t]
    } else {
        let t = (v - horizon) / (1.0 - horizon);
        [0.55 - 0.25 * t, 0.35 - 0.15 * t, 0.15 + 0.05 * t]
    };
    // The sun: a disk with a sharp rim.
    if (u - 0.74).hypot(v - 0.27) < 0.13 {
        c = [0.98, 0.82, 0.25];
    }
    // Two mountains: straight edges meeting at sharp peaks.
    for (peak_u, peak_v, half_width) in [(0.30, 0.30, 0.28), (0.56, 0.42, 0.22)] {
        let rise = (v - peak_v) / (horizon - peak_v + 0.02);
        if v >= peak_v && v < horizon + 0.02 && (u - peak_u).abs() < half_width * rise {
            let snow = v < peak_v + 0.06;
            c = if snow { [0.95, 0.95, 0.97] } else { [0.32, 0.25, 0.42] };
        }
    }
    // A zone plate: rings whose frequency grows with the radius, up to about the pixel pitch of a 128-pixel card.
    let r2 = (u - 0.24).powi(2) + (v - 0.79).powi(2);
    if r2 < 0.17f64.powi(2) {
        let s = 0.5 + 0.5 * (900.0 * r2).cos();
        c = [s, s * 0.9, 1.0 - s * 0.6];
    }
    // A checkerboard of 1/16-wide squares.
    if (0.60..0.92).contains(&u) && (0.66..0.94).contains(&v) {
        let on = ((u * 16.0).floor() as i64 + (v * 16.0).floor() as i64) % 2 == 0;
        c = if on { [0.95, 0.30, 0.25] } else { [0.08, 0.08, 0.10] };
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_sharp_edges_fine_rings_and_the_colours_of_its_parts() {
        let img = test_card(128, 128).unwrap();
        assert_eq!(img.dimensions(), (128, 128));
        // The checkerboard: neighbouring squares 8 pixels apart differ strongly (a sharp edge).
        let a = img.get_pixel(84, 92).0;
        let b = img.get_pixel(92, 92).0;
        assert!(a[0].abs_diff(b[0]) > 150, "{a:?} {b:?}");
        // The sun is yellow.
        let sun = img.get_pixel(95, 34).0;
        assert!(sun[0] > 200 && sun[1] > 170 && sun[2] < 120, "{sun:?}");
        // The zone plate's outer rings alternate within a few pixels.
        let row: Vec<u8> = (40..52).map(|x| img.get_pixel(x, 101).0[0]).collect();
        let swings = row.windows(2).filter(|w| w[0].abs_diff(w[1]) > 40).count();
        assert!(swings >= 3, "{row:?}");
        // Deterministic: the same card every time.
        assert_eq!(test_card(128, 128).unwrap(), img);
        assert!(test_card(8, 128).is_err());
    }
}
