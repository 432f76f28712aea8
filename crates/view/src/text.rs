use std::sync::Once;

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::ViewError;

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`),
/// compiled in so that no fontconfig or system font is needed.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name our text uses explicitly.
pub(crate) const FONT_FAMILY: &str = "approxlab-sans";

/// Registers the embedded font with plotters' ab_glyph font table, once per process.
///
/// It is registered both under our own name and as "sans-serif", because plotters'
/// axis labels ask for "sans-serif" by default and would otherwise fail to render.
pub(crate) fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for name in [FONT_FAMILY, "sans-serif"] {
            // The bytes are a known-good TTF shipped with the crate; a failure here is
            // a packaging bug that the text tests catch.
            let _ = plotters::style::register_font(name, FontStyle::Normal, FONT_BYTES);
        }
    });
}

/// Draws one line of `text` onto `img` with the top of its tallest glyphs at about
/// `(x, y)`, font size `size` pixels, in `colour`, using the embedded font.
pub fn draw_text(img: &mut RgbImage, text: &str, x: i32, y: i32, size: f64, colour: [u8; 3]) -> Result<(), ViewError> {
    if text.is_empty() || img.width() == 0 || img.height() == 0 {
        return Ok(());
    }
    ensure_font();
    let (w, h) = img.dimensions();
    let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
    let rgb = RGBColor(colour[0], colour[1], colour[2]);
    let style = TextStyle::from((FONT_FAMILY, size).into_font()).color(&rgb);
    // plotters' ab_glyph backend puts glyph tops about a quarter of the size above the
    // anchor point; shift so that callers can think in terms of a text box.
    let y = y + (0.25 * size).round() as i32;
    root.draw_text(text, &style, (x, y)).map_err(|e| ViewError::new(format!("cannot draw text {text:?}: {e}")))?;
    root.present().map_err(|e| ViewError::new(format!("cannot draw text {text:?}: {e}")))
}
