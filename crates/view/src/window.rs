use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// A rectangle of the plane, `[x0, x1] x [y0, y1]`, shown with `y` increasing upwards
/// (the top image row is at `y1`), as a mathematician would draw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
}

/// Why a [`Window`] was rejected; its `Display` is one line.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowError {
    /// The text could not be read as four numbers.
    Parse { input: String, reason: String },
    /// The bounds are not finite or not increasing.
    Invalid { window: String, reason: String },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Parse { input, reason } => {
                write!(f, "invalid window {input:?}: {reason}; expected \"X0,X1,Y0,Y1\" (e.g. \"-2,1,-1.5,1.5\")")
            }
            WindowError::Invalid { window, reason } => {
                write!(f, "invalid window {window}: {reason}")
            }
        }
    }
}

impl std::error::Error for WindowError {}

impl Window {
    /// A validated window.
    pub fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Result<Self, WindowError> {
        let w = Window { x0, x1, y0, y1 };
        w.validate()?;
        Ok(w)
    }

    /// Checks that all bounds are finite and `x0 < x1`, `y0 < y1`.
    ///
    /// The fields are public (so a window can be built in a `const` or a struct
    /// literal), hence validation is separate from construction.
    pub fn validate(&self) -> Result<(), WindowError> {
        let invalid = |reason: &str| WindowError::Invalid {
            window: format!("{},{},{},{}", self.x0, self.x1, self.y0, self.y1),
            reason: reason.to_string(),
        };
        if ![self.x0, self.x1, self.y0, self.y1].iter().all(|v| v.is_finite()) {
            return Err(invalid("bounds must be finite"));
        }
        if self.x0 >= self.x1 {
            return Err(invalid("need x0 < x1"));
        }
        if self.y0 >= self.y1 {
            return Err(invalid("need y0 < y1"));
        }
        Ok(())
    }

    /// Parses `"X0,X1,Y0,Y1"` (spaces around the numbers are allowed) and validates.
    pub fn parse(s: &str) -> Result<Self, WindowError> {
        let parse_err = |reason: String| WindowError::Parse { input: s.to_string(), reason };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(parse_err(format!("found {} numbers, need 4", parts.len())));
        }
        let mut v = [0.0f64; 4];
        for (slot, part) in v.iter_mut().zip(&parts) {
            *slot = part.parse::<f64>().map_err(|_| parse_err(format!("{part:?} is not a number")))?;
        }
        Window::new(v[0], v[1], v[2], v[3])
    }

    /// `x1 - x0`.
    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    /// `y1 - y0`.
    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }

    /// The `(x, y)` centres of the pixels of image rows `rows` (of a `width` x `height`
    /// image covering this window), row-major, as a flat `[n, 2]` buffer.
    ///
    /// Row 0 is the top of the image, at `y` close to `y1`: `y` decreases downwards.
    /// Coordinates are computed in `f64` and rounded once, so deep zooms lose no more
    /// than the final `f32` cast.
    pub fn pixel_centers(&self, width: u32, height: u32, rows: Range<u32>) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * width as usize * 2);
        let dx = self.width() / width as f64;
        let dy = self.height() / height as f64;
        for r in rows {
            let y = self.y1 - (r as f64 + 0.5) * dy;
            for c in 0..width {
                let x = self.x0 + (c as f64 + 0.5) * dx;
                out.push(x as f32);
                out.push(y as f32);
            }
        }
        out
    }
}

impl FromStr for Window {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Window::parse(s)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.x0, self.x1, self.y0, self.y1)
    }
}

/// How an image data set turns a pixel index into the `(row, col)` numbers the model
/// sees. `i` below is the pixel index (row or column) at the image's native size, and
/// `n` the number of rows or columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageCoords {
    /// The index itself: `i` in `0..n`.
    #[default]
    Index,
    /// Pixel centres in the unit interval: `(i + 0.5) / n`.
    UnitCenters,
    /// First and last pixel at 0 and 1: `i / (n - 1)`.
    UnitCorners,
    /// First and last pixel at -1 and 1: `2 i / (n - 1) - 1`.
    SignedCorners,
}

/// The domain of an image-valued function `(row, col) -> pixel`: a native size and the
/// coordinate convention. Row 0 is the top of the image, rows increase downwards.
///
/// Rendering at another size samples the same continuous coordinates at the new pixel
/// centres, so the image is magnified or reduced, not cropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDomain {
    pub rows: u32,
    pub cols: u32,
    pub coords: ImageCoords,
}

impl ImageDomain {
    pub fn new(rows: u32, cols: u32, coords: ImageCoords) -> Self {
        ImageDomain { rows, cols, coords }
    }

    /// The model coordinate for a (fractional) pixel index along an axis of `n` pixels.
    pub fn coord(&self, index: f64, n: u32) -> f64 {
        let n = n as f64;
        // A 1-pixel axis has no extent; put it at the start of the range rather than
        // dividing by zero.
        let span = (n - 1.0).max(1.0);
        match self.coords {
            ImageCoords::Index => index,
            ImageCoords::UnitCenters => (index + 0.5) / n,
            ImageCoords::UnitCorners => index / span,
            ImageCoords::SignedCorners => 2.0 * index / span - 1.0,
        }
    }

    /// `(row, col)` inputs for the pixel centres of rows `rows` of a `width` x `height`
    /// rendering, row-major, flat `[n, 2]`.
    ///
    /// At the native size (`width == cols`, `height == rows`) these are exactly the
    /// coordinates of the data set's own pixels.
    pub fn pixel_coords(&self, width: u32, height: u32, rows: Range<u32>) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * width as usize * 2);
        let sr = self.rows as f64 / height as f64;
        let sc = self.cols as f64 / width as f64;
        let cols: Vec<f32> = (0..width).map(|c| self.coord((c as f64 + 0.5) * sc - 0.5, self.cols) as f32).collect();
        for r in rows {
            let row = self.coord((r as f64 + 0.5) * sr - 0.5, self.rows) as f32;
            for &col in &cols {
                out.push(row);
                out.push(col);
            }
        }
        out
    }
}

/// Where the pixels of a rendering are sampled: an `(x, y)` window (y up) or an image
/// domain giving `(row, col)` pairs (rows down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    Xy(Window),
    RowCol(ImageDomain),
}

impl Domain {
    /// Model inputs for rows `rows` of a `width` x `height` rendering, flat `[n, 2]`.
    pub fn points(&self, width: u32, height: u32, rows: Range<u32>) -> Vec<f32> {
        match self {
            Domain::Xy(w) => w.pixel_centers(width, height, rows),
            Domain::RowCol(d) => d.pixel_coords(width, height, rows),
        }
    }
}

impl From<Window> for Domain {
    fn from(w: Window) -> Self {
        Domain::Xy(w)
    }
}

impl From<ImageDomain> for Domain {
    fn from(d: ImageDomain) -> Self {
        Domain::RowCol(d)
    }
}

/// Parses an image size `WIDTHxHEIGHT` such as `1920x1080`, each side from 1 to `max_side`.
pub fn parse_size(s: &str, max_side: u32) -> Result<(u32, u32), String> {
    let err = || format!("size '{s}': expected WIDTHxHEIGHT such as 800x600, each from 1 to {max_side}");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let (w, h): (u32, u32) = (w.trim().parse().map_err(|_| err())?, h.trim().parse().map_err(|_| err())?);
    if (1..=max_side).contains(&w) && (1..=max_side).contains(&h) {
        Ok((w, h))
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_within_the_limit_and_name_it_otherwise() {
        assert_eq!(parse_size("640x480", 2048), Ok((640, 480)));
        assert_eq!(parse_size(" 2 X 3 ", 2048), Ok((2, 3)));
        for bad in ["0x10", "10", "axb", "10x", "2049x1", "-1x5"] {
            let e = parse_size(bad, 2048).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("from 1 to 2048"), "{e}");
        }
    }
}
