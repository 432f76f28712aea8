use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};

use crate::error::ViewError;

/// Writes `img` as a PNG at `path` atomically: readers (a browser refreshing the
/// latest frame, say) see either the old file or the complete new one, never a
/// partial write.
///
/// The data goes to `path.tmp-<pid>` in the same directory (so the rename cannot
/// cross file systems), is fsynced, then renamed over `path`. Fast compression:
/// frames are written often during training and size matters less than latency.
pub fn write_png_atomic(path: impl AsRef<Path>, img: &RgbImage) -> Result<(), ViewError> {
    let path = path.as_ref();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ViewError::new(format!("cannot write PNG {}: {what}: {e}", path.display()))
    };
    let file_name = path.file_name().ok_or_else(|| fail("no file name", &"path ends in .. or /"))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);

    let result = (|| {
        let file = File::create(&tmp).map_err(|e| fail("create temporary file", &e))?;
        let mut w = BufWriter::new(file);
        PngEncoder::new_with_quality(&mut w, CompressionType::Fast, FilterType::Adaptive)
            .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
            .map_err(|e| fail("encode", &e))?;
        w.flush().map_err(|e| fail("write", &e))?;
        let file = w.into_inner().map_err(|e| fail("write", &e.error()))?;
        file.sync_all().map_err(|e| fail("fsync", &e))?;
        fs::rename(&tmp, path).map_err(|e| fail("rename", &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself; failure here does not lose the image, so it is not
    // reported (some file systems refuse to fsync directories).
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
