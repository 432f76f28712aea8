use std::fmt;
use std::str::FromStr;

/// Colour maps, named as in matplotlib. The input range is fixed to `[0, 1]` so that
/// frames of one run are comparable; values outside are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Colormap {
    #[default]
    Inferno,
    Magma,
    Viridis,
    Plasma,
    Gray,
    Bone,
    GistHeat,
}

/// The colour shown for NaN: magenta, which none of the maps contain, so a diverged
/// model is obvious at a glance.
pub const NAN_COLOR: [u8; 3] = [255, 0, 255];

/// An unknown colour map name; the message lists the known names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownColormap(pub String);

impl fmt::Display for UnknownColormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown colormap {:?}; known: {}", self.0, Colormap::NAMES.join(", "))
    }
}

impl std::error::Error for UnknownColormap {}

impl Colormap {
    /// Every map, in the order of [`Colormap::NAMES`].
    pub const ALL: [Colormap; 7] = [
        Colormap::Inferno,
        Colormap::Magma,
        Colormap::Viridis,
        Colormap::Plasma,
        Colormap::Gray,
        Colormap::Bone,
        Colormap::GistHeat,
    ];

    /// The accepted names (matplotlib's spelling).
    pub const NAMES: [&'static str; 7] = ["inferno", "magma", "viridis", "plasma", "gray", "bone", "gist_heat"];

    /// The matplotlib name of this map.
    pub fn name(&self) -> &'static str {
        let i = Colormap::ALL.iter().position(|c| c == self).unwrap_or(0);
        Colormap::NAMES[i]
    }

    /// Looks a map up by its matplotlib name (case-insensitive; `grey` is accepted).
    pub fn parse(name: &str) -> Result<Colormap, UnknownColormap> {
        let lower = name.trim().to_ascii_lowercase();
        let lower = if lower == "grey" { "gray".into() } else { lower };
        Colormap::NAMES
            .iter()
            .position(|n| *n == lower)
            .map(|i| Colormap::ALL[i])
            .ok_or_else(|| UnknownColormap(name.to_string()))
    }

    /// The colour of `v`, clamped to `[0, 1]`; NaN gives [`NAN_COLOR`].
    pub fn map(&self, v: f32) -> [u8; 3] {
        if v.is_nan() {
            return NAN_COLOR;
        }
        let v = v.clamp(0.0, 1.0);
        let from_colorous = |g: colorous::Gradient| {
            let c = g.eval_continuous(v as f64);
            [c.r, c.g, c.b]
        };
        match self {
            Colormap::Inferno => from_colorous(colorous::INFERNO),
            Colormap::Magma => from_colorous(colorous::MAGMA),
            Colormap::Viridis => from_colorous(colorous::VIRIDIS),
            Colormap::Plasma => from_colorous(colorous::PLASMA),
            Colormap::Gray => {
                let g = to_u8(v);
                [g, g, g]
            }
            Colormap::Bone => {
                [to_u8(piecewise(&BONE_R, v)), to_u8(piecewise(&BONE_G, v)), to_u8(piecewise(&BONE_B, v))]
            }
            // matplotlib's _gist_heat_data, a closed form clipped to [0, 1].
            Colormap::GistHeat => [to_u8(1.5 * v), to_u8(2.0 * v - 1.0), to_u8(4.0 * v - 3.0)],
        }
    }
}

impl FromStr for Colormap {
    type Err = UnknownColormap;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Colormap::parse(s)
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// matplotlib's _bone_data (x, value) knots; colorous has no bone map. The knots are
// 7/8 gray plus 1/8 of a reversed "hot", which is how matplotlib derived them.
const BONE_R: [(f32, f32); 3] = [(0.0, 0.0), (0.746032, 0.652778), (1.0, 1.0)];
const BONE_G: [(f32, f32); 4] = [(0.0, 0.0), (0.365079, 0.319444), (0.746032, 0.777778), (1.0, 1.0)];
const BONE_B: [(f32, f32); 3] = [(0.0, 0.0), (0.365079, 0.444444), (1.0, 1.0)];

fn piecewise(knots: &[(f32, f32)], v: f32) -> f32 {
    for w in knots.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if v <= x1 {
            return y0 + (v - x0) / (x1 - x0) * (y1 - y0);
        }
    }
    knots[knots.len() - 1].1
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}
