//! Video output: turns a sequence of equally sized frames (typically the PNGs a training
//! run writes into `frames/`) into an MP4 (H.264) or an animated GIF.
//!
//! Everything is pure Rust plus C compiled by `cargo build` itself; no ffmpeg, no
//! system library.
//!
//! * [`VideoWriter`]: streaming encoder: [`VideoWriter::create`], then
//!   [`VideoWriter::push`] per frame, then [`VideoWriter::finish`].
//! * [`encode_frames_dir`]: every `*.png` of a directory, in name order, into one video.
//! * [`VideoOptions`]: frame rate, MP4 bit rate, GIF palette.
//!
//! # MP4
//!
//! Frames are converted to YUV 4:2:0 with the BT.601 matrix, limited ("TV") range,
//! and signalled as such in the stream (VUI: BT.601 matrix, BT.709/sRGB primaries,
//! sRGB transfer), so players reproduce the colours. 4:2:0 needs an even width and
//! height: an odd dimension is padded by one row or column that repeats the edge
//! pixels (never cropped), so a 65x33 frame becomes a 66x34 video. Every pushed frame
//! becomes one sample (rate control never skips frames), one sample lasts exactly
//! `1/fps` seconds and the video is `frames/fps` seconds long. A keyframe is inserted
//! every two seconds so players can seek. H.264 Constrained Baseline, which every
//! browser decodes. The largest frame OpenH264 accepts is 3840x2160 (or 2160x3840).
//!
//! The muxer (muxide) keeps the encoded samples in memory until
//! [`VideoWriter::finish`], which writes a "fast start" file (`moov` before `mdat`)
//! that browsers can play while downloading. Memory use is the size of the
//! compressed video, typically a few MB.
//!
//! # GIF
//!
//! Loops forever. GIF delays are whole centiseconds, so the delay of each frame is
//! `100/fps` rounded, with the rounding error carried to the next frame: at 30 fps
//! the delays go 3, 4, 3, 3, 4, 3, ... cs and the total length stays `frames/fps`
//! (to within half a centisecond).
//! Browsers show delays below 2 cs as 10 cs, so every delay is at least 2 cs: GIFs
//! play at most at 50 fps. Colours: 256 per frame. With
//! [`VideoOptions::colormap_palette`] (see [`colormap_palette`]) every frame uses that
//! fixed global palette, which is exact for colormapped heatmaps and keeps colours
//! stable from frame to frame; otherwise each frame gets its own palette from the
//! NeuQuant quantiser.
//!
//! # Patent licensing of H.264
//!
//! H.264 is covered by patents. Cisco pays the MPEG LA royalties for OpenH264, but its
//! licence covers only the prebuilt binaries Cisco distributes. This crate compiles
//! OpenH264 from source (the `openh264` crate's `source` feature), so **the MP4 output
//! is not covered by Cisco's patent licence**. Whether that matters depends on where
//! and how the software is used; users who need to avoid the question should use
//! [`VideoFormat::Gif`], which is patent free.
//!
//! # Atomic output
//!
//! The video is written to `<name>.tmp-<pid>-<n>` next to the output and renamed
//! over it by [`VideoWriter::finish`]: readers never see a partial file. The
//! temporary file is removed on error and when a writer is dropped unfinished.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use image::RgbImage;
use rayon::prelude::*;

use crate::colormap::{Colormap, NAN_COLOR};
use crate::error::ViewError;

/// Container and codec of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoFormat {
    /// H.264 (OpenH264) in an MP4 container (muxide). OpenH264 is compiled from
    /// source, so Cisco's H.264 patent licence (for its prebuilt binaries only) does
    /// not cover it; see [`VideoWriter`].
    #[default]
    Mp4,
    /// Animated GIF, looping forever.
    Gif,
}

impl VideoFormat {
    /// Every format, in the order of [`VideoFormat::NAMES`].
    pub const ALL: [VideoFormat; 2] = [VideoFormat::Mp4, VideoFormat::Gif];

    /// The accepted names, which are also the file extensions.
    pub const NAMES: [&'static str; 2] = ["mp4", "gif"];

    /// The name (and file extension) of this format.
    pub fn name(&self) -> &'static str {
        match self {
            VideoFormat::Mp4 => "mp4",
            VideoFormat::Gif => "gif",
        }
    }

    /// Looks a format up by name (case-insensitive, a leading `.` is accepted).
    pub fn parse(name: &str) -> Result<VideoFormat, ViewError> {
        let lower = name.trim().trim_start_matches('.').to_ascii_lowercase();
        VideoFormat::ALL.into_iter().find(|f| f.name() == lower).ok_or_else(|| {
            ViewError::new(format!("unknown video format {name:?}; known: {}", VideoFormat::NAMES.join(", ")))
        })
    }

    /// The format a path's extension names (`out.mp4`, `out.GIF`), if any.
    pub fn from_path(path: impl AsRef<Path>) -> Option<VideoFormat> {
        let ext = path.as_ref().extension()?.to_str()?;
        VideoFormat::parse(ext).ok()
    }
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VideoFormat {
    type Err = ViewError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VideoFormat::parse(s)
    }
}

/// The default frame rate.
pub const DEFAULT_FPS: u32 = 30;
/// The highest accepted frame rate.
pub const MAX_FPS: u32 = 120;
/// The lowest default MP4 bit rate, bits per second.
pub const MIN_DEFAULT_BITRATE: u32 = 1_000_000;
/// Default MP4 bit rate per pixel and frame.
pub const DEFAULT_BITS_PER_PIXEL: f64 = 0.15;

/// How a video is encoded. `Default` gives 30 fps, automatic bit rate, quantised GIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOptions {
    /// Frames per second, `1..=`[`MAX_FPS`].
    pub fps: u32,
    /// MP4 target bit rate in bits per second; `None`: [`default_bitrate`] of the
    /// (padded) frame size and frame rate. Ignored for GIF.
    pub bitrate: Option<u32>,
    /// GIF only: a fixed palette of at most 256 colours used for every frame, each
    /// pixel taken to its nearest entry. Meant for colormapped heatmaps, see
    /// [`colormap_palette`]. `None`: each frame is quantised on its own (NeuQuant).
    /// Ignored for MP4.
    pub colormap_palette: Option<Vec<[u8; 3]>>,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions { fps: DEFAULT_FPS, bitrate: None, colormap_palette: None }
    }
}

impl VideoOptions {
    /// Checks the frame rate, the bit rate and the palette.
    pub fn validate(&self) -> Result<(), ViewError> {
        if !(1..=MAX_FPS).contains(&self.fps) {
            return Err(ViewError::new(format!("invalid fps {}: expected 1..={MAX_FPS}", self.fps)));
        }
        if self.bitrate == Some(0) {
            return Err(ViewError::new("invalid bitrate 0: expected a positive number of bits per second"));
        }
        if let Some(p) = &self.colormap_palette {
            if p.is_empty() || p.len() > 256 {
                return Err(ViewError::new(format!("invalid GIF palette of {} colours: expected 1..=256", p.len())));
            }
        }
        Ok(())
    }

    /// The MP4 bit rate for frames of `width` x `height`: [`VideoOptions::bitrate`] or
    /// [`default_bitrate`].
    pub fn bitrate_for(&self, width: u32, height: u32) -> u32 {
        self.bitrate.unwrap_or_else(|| default_bitrate(width, height, self.fps))
    }
}

/// [`DEFAULT_BITS_PER_PIXEL`] per pixel and frame, at least [`MIN_DEFAULT_BITRATE`]:
/// 1 Mbit/s up to about 480x480 at 30 fps, 9.3 Mbit/s for 1920x1080 at 30 fps.
pub fn default_bitrate(width: u32, height: u32, fps: u32) -> u32 {
    let bps = DEFAULT_BITS_PER_PIXEL * f64::from(width) * f64::from(height) * f64::from(fps);
    (bps.round().min(f64::from(u32::MAX)) as u32).max(MIN_DEFAULT_BITRATE)
}

/// A 256-colour GIF palette for frames drawn with `map`: 255 evenly spaced colours of
/// the map plus [`NAN_COLOR`]. Use as [`VideoOptions::colormap_palette`].
pub fn colormap_palette(map: Colormap) -> Vec<[u8; 3]> {
    let mut p: Vec<[u8; 3]> = (0..255).map(|i| map.map(i as f32 / 254.0)).collect();
    p.push(NAN_COLOR);
    p
}

/// What [`VideoWriter::finish`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSummary {
    /// The output file.
    pub path: PathBuf,
    pub format: VideoFormat,
    /// Frames pushed (and encoded: none is dropped).
    pub frames: u64,
    /// Playing time in seconds: `frames/fps` (GIF: the sum of the centisecond delays;
    /// a one-frame MP4 shows its frame for `2/fps`, see [`VideoWriter::finish`]).
    pub duration_s: f64,
    /// File size in bytes.
    pub bytes: u64,
    /// Size of the video picture (MP4: padded to even width and height).
    pub width: u32,
    pub height: u32,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Streaming video encoder: MP4 (H.264) or GIF, written atomically.
///
/// MP4: BT.601 limited-range YUV 4:2:0, odd sizes padded to even by repeating the
/// edge, one sample per pushed frame, duration `frames/fps`. GIF: loops forever, delays
/// of `100/fps` cs with the rounding carried over (at most 50 fps), colours from
/// [`VideoOptions::colormap_palette`] or quantised per frame.
///
/// **Patents:** the H.264 encoder is OpenH264 compiled from source, which Cisco's
/// patent licence does not cover (it covers only Cisco's prebuilt binaries); use
/// [`VideoFormat::Gif`] where that matters.
///
/// ```no_run
/// # use approxlab_view::{VideoFormat, VideoOptions, VideoWriter, RgbImage};
/// let mut w = VideoWriter::create("out.mp4", VideoFormat::Mp4, 480, 320, &VideoOptions::default())?;
/// for i in 0..60u32 {
///     w.push(&RgbImage::from_pixel(480, 320, image::Rgb([(i * 4) as u8, 0, 0])))?;
/// }
/// let summary = w.finish()?;
/// # Ok::<(), approxlab_view::ViewError>(())
/// ```
pub struct VideoWriter {
    path: PathBuf,
    tmp: PathBuf,
    format: VideoFormat,
    width: u32,
    height: u32,
    fps: u32,
    frames: u64,
    /// `Some` until finished or broken by an I/O or encoder error.
    sink: Option<Sink>,
    /// The error that broke the writer, repeated by later calls.
    broken: Option<ViewError>,
}

enum Sink {
    Mp4(Box<Mp4Sink>),
    Gif(Box<GifSink>),
}

impl fmt::Debug for VideoWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoWriter")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl VideoWriter {
    /// Starts a video of `width` x `height` frames at `path` (written atomically at
    /// [`finish`](Self::finish)). Validates the options and the size.
    pub fn create(
        path: impl AsRef<Path>,
        format: VideoFormat,
        width: u32,
        height: u32,
        options: &VideoOptions,
    ) -> Result<VideoWriter, ViewError> {
        let path = path.as_ref().to_path_buf();
        options.validate()?;
        if width == 0 || height == 0 {
            return Err(ViewError::new(format!(
                "cannot write video {}: frame size {width}x{height} is empty",
                path.display()
            )));
        }
        match format {
            VideoFormat::Mp4 => {
                let (pw, ph) = (even(width), even(height));
                if pw.max(ph) > 3840 || pw.min(ph) > 2160 {
                    return Err(ViewError::new(format!(
                        "cannot write video {}: frame size {width}x{height} is too large for H.264 \
                         (OpenH264): expected at most 3840x2160 or 2160x3840",
                        path.display()
                    )));
                }
            }
            VideoFormat::Gif => {
                if width > u32::from(u16::MAX) || height > u32::from(u16::MAX) {
                    return Err(ViewError::new(format!(
                        "cannot write video {}: frame size {width}x{height} is too large for GIF: \
                         expected at most 65535x65535",
                        path.display()
                    )));
                }
            }
        }
        let file_name = path.file_name().ok_or_else(|| {
            ViewError::new(format!("cannot write video {}: the path has no file name", path.display()))
        })?;
        let mut tmp_name = file_name.to_os_string();
        tmp_name.push(format!(".tmp-{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let tmp = path.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(|e| {
            ViewError::new(format!("cannot write video {}: create {}: {e}", path.display(), tmp.display()))
        })?;
        let out = BufWriter::new(file);
        let sink = match format {
            VideoFormat::Mp4 => Mp4Sink::new(out, width, height, options).map(|s| Sink::Mp4(Box::new(s))),
            VideoFormat::Gif => GifSink::new(out, width, height, options).map(|s| Sink::Gif(Box::new(s))),
        };
        let sink = match sink {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(ViewError::new(format!("cannot write video {}: {e}", path.display())));
            }
        };
        Ok(VideoWriter {
            path,
            tmp,
            format,
            width,
            height,
            fps: options.fps,
            frames: 0,
            sink: Some(sink),
            broken: None,
        })
    }

    /// The output path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format being written.
    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// The frame size every pushed frame must have.
    pub fn frame_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Encodes one frame. A frame of the wrong size is refused (and the writer stays
    /// usable); an encoder or I/O error removes the temporary file and makes every
    /// later call fail.
    pub fn push(&mut self, frame: &RgbImage) -> Result<(), ViewError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if frame.dimensions() != (self.width, self.height) {
            return Err(ViewError::new(format!(
                "cannot write video {}: frame {} is {}x{}, expected {}x{} like the first frame",
                self.path.display(),
                self.frames,
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        let index = self.frames;
        let result = match self.sink.as_mut() {
            Some(Sink::Mp4(s)) => s.push(frame, index, self.fps),
            Some(Sink::Gif(s)) => s.push(frame),
            None => Err("the writer is finished".to_string()),
        };
        match result {
            Ok(()) => {
                self.frames += 1;
                Ok(())
            }
            Err(e) => Err(self.break_with(format!("frame {index}: {e}"))),
        }
    }

    /// Writes the end of the file, flushes it to disk and renames it to the output
    /// path. At least one frame must have been pushed. A one-frame MP4 gets the frame
    /// twice (as an unchanged second frame), since an MP4 sample lasts until the next
    /// one and a lone sample would get no duration.
    pub fn finish(mut self) -> Result<VideoSummary, ViewError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if self.frames == 0 {
            return Err(self.break_with("no frames were pushed".to_string()));
        }
        let sink = self.sink.take().expect("sink present while not broken");
        let result = match sink {
            Sink::Mp4(s) => s.finish(self.frames, self.fps),
            Sink::Gif(s) => s.finish(),
        };
        let (file, duration_s) = match result {
            Ok(r) => r,
            Err(e) => return Err(self.break_with(e)),
        };
        let bytes = match file.sync_all().and_then(|()| file.metadata()).map(|m| m.len()) {
            Ok(b) => b,
            Err(e) => return Err(self.break_with(format!("fsync: {e}"))),
        };
        drop(file);
        if let Err(e) = fs::rename(&self.tmp, &self.path) {
            return Err(self.break_with(format!("rename {}: {e}", self.tmp.display())));
        }
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let (width, height) = match self.format {
            VideoFormat::Mp4 => (even(self.width), even(self.height)),
            VideoFormat::Gif => (self.width, self.height),
        };
        Ok(VideoSummary {
            path: self.path.clone(),
            format: self.format,
            frames: self.frames,
            duration_s,
            bytes,
            width,
            height,
        })
    }

    /// Marks the writer broken, removes the temporary file, returns the error.
    fn break_with(&mut self, msg: String) -> ViewError {
        self.sink = None;
        let _ = fs::remove_file(&self.tmp);
        let e = ViewError::new(format!("cannot write video {}: {msg}", self.path.display()));
        self.broken = Some(e.clone());
        e
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        // Unfinished (or failed) writer: its temporary file is garbage. After a
        // successful finish the file has been renamed and this is a no-op.
        if self.sink.is_some() {
            self.sink = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn even(n: u32) -> u32 {
    n + (n & 1)
}

// ---------------------------------------------------------------------------------
// MP4: OpenH264 + muxide

struct Mp4Sink {
    encoder: openh264::encoder::Encoder,
    muxer: muxide::api::Muxer<BufWriter<File>>,
    width: usize,
    height: usize,
    /// The I420 planes of the last frame: Y, then U, then V.
    yuv: Vec<u8>,
}

impl Mp4Sink {
    fn new(out: BufWriter<File>, width: u32, height: u32, options: &VideoOptions) -> Result<Mp4Sink, String> {
        use openh264::encoder::{
            BitRate, ColorPrimaries, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, MatrixCoefficients,
            RateControlMode, TransferCharacteristics, UsageType, VuiConfig,
        };
        let (pw, ph) = (even(width), even(height));
        let bitrate = options.bitrate_for(pw, ph);
        let vui = VuiConfig::new()
            .color_primaries(ColorPrimaries::Bt709)
            .transfer_characteristics(TransferCharacteristics::Srgb)
            .matrix_coefficients(MatrixCoefficients::Smpte170M)
            .full_range(false);
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(options.fps as f32))
            // Never drop a frame to meet the bit rate: every pushed frame is a sample.
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(2 * options.fps))
            .vui(vui);
        let mut encoder = Encoder::with_api_config(openh264::OpenH264API::from_source(), config)
            .map_err(|e| format!("cannot start the H.264 encoder: {e}"))?;
        // OpenH264 logs to stderr at warning level until the `openh264` crate quiets it
        // after initialisation, which happens at the first frame; initialisation warns
        // that without frame skipping the bit rate is a target, not a limit (intended
        // here). Quiet it now: the trace level is the one option OpenH264 accepts
        // before initialisation (`CWelsH264SVCEncoder::SetOption`).
        let mut quiet = openh264_sys2::WELS_LOG_QUIET as u32;
        // SAFETY: the option is read as a `uint32_t` through the pointer during the
        // call only; the encoder is alive; no parameter the crate relies on changes.
        unsafe {
            encoder.raw_api().set_option(openh264_sys2::ENCODER_OPTION_TRACE_LEVEL, (&raw mut quiet).cast());
        }
        let muxer = muxide::api::MuxerBuilder::new(out)
            .video(muxide::api::VideoCodec::H264, pw, ph, f64::from(options.fps))
            .with_fast_start(true)
            .build()
            .map_err(|e| format!("cannot start the MP4 muxer: {e}"))?;
        let (w, h) = (pw as usize, ph as usize);
        Ok(Mp4Sink { encoder, muxer, width: w, height: h, yuv: vec![0; w * h + 2 * (w / 2) * (h / 2)] })
    }

    fn push(&mut self, frame: &RgbImage, index: u64, fps: u32) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        let (y, uv) = self.yuv.split_at_mut(w * h);
        let (u, v) = uv.split_at_mut((w / 2) * (h / 2));
        rgb_to_i420(frame, w, h, y, u, v);
        self.encode_current(index, fps)
    }

    /// Encodes `self.yuv` as frame `index` and hands it to the muxer.
    fn encode_current(&mut self, index: u64, fps: u32) -> Result<(), String> {
        use openh264::encoder::FrameType;
        use openh264::formats::YUVSlices;
        let (w, h) = (self.width, self.height);
        let (y, uv) = self.yuv.split_at(w * h);
        let (u, v) = uv.split_at((w / 2) * (h / 2));
        let src = YUVSlices::new((y, u, v), (w, h), (w, w / 2, w / 2));
        let ts = openh264::Timestamp::from_millis(index * 1000 / u64::from(fps));
        let bits = self.encoder.encode_at(&src, ts).map_err(|e| format!("H.264 encoder: {e}"))?;
        let frame_type = bits.frame_type();
        let data = bits.to_vec();
        if data.is_empty() || frame_type == FrameType::Skip {
            return Err(format!("the H.264 encoder dropped the frame (frame type {frame_type:?})"));
        }
        let keyframe = matches!(frame_type, FrameType::IDR);
        let pts = index as f64 / f64::from(fps);
        self.muxer.write_video(pts, &data, keyframe).map_err(|e| format!("MP4 muxer: {e}"))
    }

    fn finish(mut self, frames: u64, fps: u32) -> Result<(File, f64), String> {
        let mut samples = frames;
        if frames == 1 {
            // See VideoWriter::finish: give the lone frame a duration.
            self.encode_current(1, fps)?;
            samples = 2;
        }
        self.muxer.finish_in_place().map_err(|e| format!("MP4 muxer: {e}"))?;
        let out = self.muxer.into_writer();
        let file = out.into_inner().map_err(|e| format!("write: {}", e.error()))?;
        Ok((file, samples as f64 / f64::from(fps)))
    }
}

// BT.601 luma weights; the chroma and range scaling follow from them.
const KR: f64 = 0.299;
const KB: f64 = 0.114;
const KG: f64 = 1.0 - KR - KB;
/// Fixed-point scale of the conversion coefficients.
const FIX: f64 = 65536.0;
const fn fix(x: f64) -> i32 {
    (x * FIX + if x < 0.0 { -0.5 } else { 0.5 }) as i32
}
// Limited range: Y in [16, 235], Cb and Cr in [16, 240], from 8-bit R, G, B.
const Y_R: i32 = fix(KR * 219.0 / 255.0);
const Y_G: i32 = fix(KG * 219.0 / 255.0);
const Y_B: i32 = fix(KB * 219.0 / 255.0);
const CB_R: i32 = fix(-0.5 * KR / (1.0 - KB) * 224.0 / 255.0);
const CB_G: i32 = fix(-0.5 * KG / (1.0 - KB) * 224.0 / 255.0);
const CB_B: i32 = fix(0.5 * 224.0 / 255.0);
const CR_R: i32 = fix(0.5 * 224.0 / 255.0);
const CR_G: i32 = fix(-0.5 * KG / (1.0 - KR) * 224.0 / 255.0);
const CR_B: i32 = fix(-0.5 * KB / (1.0 - KR) * 224.0 / 255.0);

/// Converts `img` to I420 planes of `pw` x `ph` (both even, at least the image size),
/// BT.601 limited range. Pixels beyond the image repeat its last column / row. Chroma
/// is the conversion of the mean colour of each 2x2 block.
fn rgb_to_i420(img: &RgbImage, pw: usize, ph: usize, y: &mut [u8], u: &mut [u8], v: &mut [u8]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    debug_assert!(pw.is_multiple_of(2) && ph.is_multiple_of(2) && pw >= w && ph >= h);
    let raw = img.as_raw();
    let row = |sy: usize| &raw[sy.min(h - 1) * w * 3..(sy.min(h - 1) + 1) * w * 3];
    let (cw, ch) = (pw / 2, ph / 2);
    y.par_chunks_mut(2 * pw).zip(u.par_chunks_mut(cw)).zip(v.par_chunks_mut(cw)).take(ch).enumerate().for_each(
        |(cy, ((yrows, urow), vrow))| {
            let rows = [row(2 * cy), row(2 * cy + 1)];
            let (y0, y1) = yrows.split_at_mut(pw);
            let ys = [y0, y1];
            for cx in 0..cw {
                let (mut sr, mut sg, mut sb) = (0i32, 0i32, 0i32);
                for (r, src) in rows.iter().enumerate() {
                    for dx in 0..2 {
                        let x = 2 * cx + dx;
                        let p = &src[x.min(w - 1) * 3..x.min(w - 1) * 3 + 3];
                        let (pr, pg, pb) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
                        let luma = (Y_R * pr + Y_G * pg + Y_B * pb + (16 << 16) + (1 << 15)) >> 16;
                        ys[r][x] = luma.clamp(0, 255) as u8;
                        sr += pr;
                        sg += pg;
                        sb += pb;
                    }
                }
                // Sums of four pixels: shift by two more bits.
                let round = (128 << 18) + (1 << 17);
                urow[cx] = ((CB_R * sr + CB_G * sg + CB_B * sb + round) >> 18).clamp(0, 255) as u8;
                vrow[cx] = ((CR_R * sr + CR_G * sg + CR_B * sb + round) >> 18).clamp(0, 255) as u8;
            }
        },
    );
}

// ---------------------------------------------------------------------------------
// GIF

struct GifSink {
    encoder: gif::Encoder<BufWriter<File>>,
    width: u16,
    height: u16,
    fps: u32,
    /// See [`next_gif_delay`].
    owed: i64,
    /// Total delay written, centiseconds.
    total_cs: u64,
    palette: Option<FixedPalette>,
}

/// The delay of the next GIF frame in centiseconds: `100/fps` rounded, with the
/// rounding error `owed` (in units of 1/fps cs, either sign) carried over so that the
/// running total stays within half a centisecond of `frames * 100 / fps`. At least 2
/// (browsers show shorter delays as 10 cs); when clamped, nothing is carried.
fn next_gif_delay(owed: &mut i64, fps: u32) -> u16 {
    let fps = i64::from(fps);
    let want = *owed + 100;
    let delay = (want + fps / 2).div_euclid(fps);
    if delay < 2 {
        *owed = 0;
        return 2;
    }
    *owed = want - delay * fps;
    delay as u16
}

struct FixedPalette {
    colors: Vec<[u8; 3]>,
    cache: HashMap<[u8; 3], u8>,
}

impl FixedPalette {
    fn index(&mut self, c: [u8; 3]) -> u8 {
        let colors = &self.colors;
        *self.cache.entry(c).or_insert_with(|| {
            let d = |p: &[u8; 3]| (0..3).map(|k| (i32::from(p[k]) - i32::from(c[k])).pow(2)).sum::<i32>();
            colors.iter().enumerate().min_by_key(|(_, p)| d(p)).map_or(0, |(i, _)| i as u8)
        })
    }
}

impl GifSink {
    fn new(out: BufWriter<File>, width: u32, height: u32, options: &VideoOptions) -> Result<GifSink, String> {
        let (w, h) = (width as u16, height as u16);
        let palette = options
            .colormap_palette
            .as_ref()
            .map(|colors| FixedPalette { colors: colors.clone(), cache: HashMap::new() });
        let global: Vec<u8> = palette.as_ref().map(|p| p.colors.concat()).unwrap_or_default();
        let mut encoder = gif::Encoder::new(out, w, h, &global).map_err(|e| format!("GIF encoder: {e}"))?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(|e| format!("GIF encoder: {e}"))?;
        Ok(GifSink { encoder, width: w, height: h, fps: options.fps, owed: 0, total_cs: 0, palette })
    }

    fn next_delay(&mut self) -> u16 {
        let delay = next_gif_delay(&mut self.owed, self.fps);
        self.total_cs += u64::from(delay);
        delay
    }

    fn push(&mut self, frame: &RgbImage) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        let mut f = match &mut self.palette {
            Some(p) => {
                let idx: Vec<u8> = frame.pixels().map(|px| p.index(px.0)).collect();
                gif::Frame::from_indexed_pixels(w, h, idx, None)
            }
            None => gif::Frame::from_rgb_speed(w, h, frame.as_raw(), 10),
        };
        f.delay = self.next_delay();
        self.encoder.write_frame(&f).map_err(|e| format!("GIF encoder: {e}"))
    }

    fn finish(self) -> Result<(File, f64), String> {
        let total = self.total_cs as f64 / 100.0;
        let out = self.encoder.into_inner().map_err(|e| format!("GIF encoder: {e}"))?;
        let file = out.into_inner().map_err(|e| format!("write: {}", e.error()))?;
        Ok((file, total))
    }
}

// ---------------------------------------------------------------------------------
// Frames directory

/// Encodes every `*.png` in `dir` (sorted by file name, so `step-00000100.png`
/// zero-padded names play in training order) into one video at `out_path`.
///
/// All sizes are checked (from the PNG headers) before anything is encoded; the
/// frames are decoded in parallel batches and pushed in order.
///
/// Errors: `dir` unreadable; no PNG in `dir`; a frame whose size differs from the
/// first (the message names both files); an unreadable PNG (named); any encoder error.
pub fn encode_frames_dir(
    dir: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
    format: VideoFormat,
    options: &VideoOptions,
) -> Result<VideoSummary, ViewError> {
    encode_frames_dir_with_progress(dir, out_path, format, options, &mut |_, _| {})
}

/// [`encode_frames_dir`], calling `progress(done, total)` after each frame is encoded.
pub fn encode_frames_dir_with_progress(
    dir: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
    format: VideoFormat,
    options: &VideoOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<VideoSummary, ViewError> {
    let dir = dir.as_ref();
    options.validate()?;
    let frames = list_frames(dir)?;
    let Some(first) = frames.first() else {
        return Err(ViewError::new(format!("{}: has no frames (*.png); train with --frame-every N", dir.display())));
    };
    let size_of = |p: &Path| {
        image::image_dimensions(p).map_err(|e| ViewError::new(format!("{}: cannot read PNG: {e}", p.display())))
    };
    let (w, h) = size_of(first)?;
    for p in &frames[1..] {
        let (fw, fh) = size_of(p)?;
        if (fw, fh) != (w, h) {
            return Err(ViewError::new(format!(
                "{}: frame is {fw}x{fh}, expected {w}x{h} like {} (all frames must have the same size)",
                p.display(),
                first.display()
            )));
        }
    }
    let mut writer = VideoWriter::create(out_path, format, w, h, options)?;
    const BATCH: usize = 16;
    let mut done = 0;
    for batch in frames.chunks(BATCH) {
        let images: Vec<Result<RgbImage, ViewError>> = batch
            .par_iter()
            .map(|p| {
                image::open(p)
                    .map(|img| img.into_rgb8())
                    .map_err(|e| ViewError::new(format!("{}: cannot read PNG: {e}", p.display())))
            })
            .collect();
        for img in images {
            writer.push(&img?)?;
            done += 1;
            progress(done, frames.len());
        }
    }
    writer.finish()
}

/// The `*.png` files of `dir` (case-insensitive extension), sorted by name.
fn list_frames(dir: &Path) -> Result<Vec<PathBuf>, ViewError> {
    let entries =
        fs::read_dir(dir).map_err(|e| ViewError::new(format!("{}: cannot list frames: {e}", dir.display())))?;
    let mut frames = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ViewError::new(format!("{}: cannot list frames: {e}", dir.display())))?;
        let path = entry.path();
        let is_png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            frames.push(path);
        }
    }
    frames.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(c: [u8; 3], w: u32, h: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>, usize, usize) {
        let img = RgbImage::from_pixel(w, h, image::Rgb(c));
        let (pw, ph) = (even(w) as usize, even(h) as usize);
        let mut y = vec![0; pw * ph];
        let mut u = vec![0; pw * ph / 4];
        let mut v = vec![0; pw * ph / 4];
        rgb_to_i420(&img, pw, ph, &mut y, &mut u, &mut v);
        (y, u, v, pw, ph)
    }

    #[test]
    fn bt601_limited_range_reference_colours() {
        // (R, G, B) -> (Y, Cb, Cr), BT.601 limited range, rounded: red is
        // Y = 16 + 219 * 0.299 = 81.48, Cb = 90.20, Cr = 240.
        let cases = [
            ([0, 0, 0], [16, 128, 128]),
            ([255, 255, 255], [235, 128, 128]),
            ([255, 0, 0], [81, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
            ([128, 128, 128], [126, 128, 128]),
        ];
        for (rgb, want) in cases {
            let (y, u, v, _, _) = convert(rgb, 2, 2);
            assert!(y.iter().all(|&p| p == want[0]), "{rgb:?}: Y {y:?}, want {}", want[0]);
            assert_eq!((u[0], v[0]), (want[1], want[2]), "{rgb:?}: Cb/Cr");
        }
    }

    #[test]
    fn odd_sizes_are_padded_by_edge_replication() {
        // 3x3: column 2 and row 2 are the edge; the padded column 3 / row 3 repeat them.
        let mut img = RgbImage::from_pixel(3, 3, image::Rgb([0, 0, 0]));
        for i in 0..3 {
            img.put_pixel(2, i, image::Rgb([255, 255, 255]));
            img.put_pixel(i, 2, image::Rgb([255, 255, 255]));
        }
        let mut y = vec![0; 16];
        let mut u = vec![0; 4];
        let mut v = vec![0; 4];
        rgb_to_i420(&img, 4, 4, &mut y, &mut u, &mut v);
        #[rustfmt::skip]
        let want = [
            16, 16, 235, 235,
            16, 16, 235, 235,
            235, 235, 235, 235,
            235, 235, 235, 235,
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn gif_delays_carry_rounding() {
        let delays = |fps: u32, n: usize| {
            let mut owed = 0;
            (0..n).map(|_| next_gif_delay(&mut owed, fps)).collect::<Vec<u16>>()
        };
        assert_eq!(delays(30, 6), [3, 4, 3, 3, 4, 3]);
        assert_eq!(delays(30, 300).iter().map(|&d| u32::from(d)).sum::<u32>(), 1000);
        assert_eq!(delays(7, 7).iter().map(|&d| u32::from(d)).sum::<u32>(), 100);
        assert_eq!(delays(25, 3), [4, 4, 4]);
        assert_eq!(delays(60, 3), [2, 2, 2]);
        assert_eq!(delays(120, 3), [2, 2, 2]);
        assert_eq!(delays(1, 2), [100, 100]);
    }
}
