use image::{Rgb, RgbImage};

use crate::error::ViewError;
use crate::text::draw_text;

/// Colour of gaps, padding and caption bars: dark, so that bright panels stand out and
/// the white caption text is readable.
pub const PANEL_BACKGROUND: [u8; 3] = [24, 24, 28];

/// Height of a [`caption_bar`] in pixels.
pub const CAPTION_BAR_HEIGHT: u32 = 28;

/// Places images side by side, `gap` pixels apart, top-aligned; shorter images are
/// padded with [`PANEL_BACKGROUND`].
pub fn hstack(images: &[&RgbImage], gap: u32) -> RgbImage {
    hstack_with(images, gap, PANEL_BACKGROUND)
}

/// As [`hstack`] with an explicit gap and padding colour.
pub fn hstack_with(images: &[&RgbImage], gap: u32, background: [u8; 3]) -> RgbImage {
    let width = images.iter().map(|i| i.width()).sum::<u32>() + gap * (images.len() as u32).saturating_sub(1);
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = RgbImage::from_pixel(width, height, Rgb(background));
    let mut x = 0;
    for img in images {
        image::imageops::replace(&mut out, *img, x as i64, 0);
        x += img.width() + gap;
    }
    out
}

/// Places images one above the other, `gap` pixels apart, left-aligned; narrower
/// images are padded with [`PANEL_BACKGROUND`].
pub fn vstack(images: &[&RgbImage], gap: u32) -> RgbImage {
    let height = images.iter().map(|i| i.height()).sum::<u32>() + gap * (images.len() as u32).saturating_sub(1);
    let width = images.iter().map(|i| i.width()).max().unwrap_or(0);
    let mut out = RgbImage::from_pixel(width, height, Rgb(PANEL_BACKGROUND));
    let mut y = 0;
    for img in images {
        image::imageops::replace(&mut out, *img, 0, y as i64);
        y += img.height() + gap;
    }
    out
}

/// A `width` x [`CAPTION_BAR_HEIGHT`] bar with `text` in white on
/// [`PANEL_BACKGROUND`], for labelling panels ("learned", "truth", "error").
pub fn caption_bar(text: &str, width: u32) -> Result<RgbImage, ViewError> {
    let mut bar = RgbImage::from_pixel(width, CAPTION_BAR_HEIGHT, Rgb(PANEL_BACKGROUND));
    draw_text(&mut bar, text, 8, 7, 18.0, [235, 235, 235])?;
    Ok(bar)
}

/// `img` with a [`caption_bar`] reading `text` on top.
pub fn label_panel(img: &RgbImage, text: &str) -> Result<RgbImage, ViewError> {
    let bar = caption_bar(text, img.width())?;
    Ok(vstack(&[&bar, img], 0))
}
