//! Video output: MP4 structure (ISO BMFF boxes), decoded MP4 and GIF content,
//! frames-directory encoding and its errors, atomic output.

use std::fs;
use std::path::{Path, PathBuf};

use approxlab_view::{
    colormap_palette, encode_frames_dir, write_png_atomic, Colormap, RgbImage, VideoFormat, VideoOptions, VideoWriter,
    MAX_FPS,
};

/// Odd on both axes so the MP4 padding to 66x34 is exercised.
const W: u32 = 65;
const H: u32 = 33;
const N: usize = 12;

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("approxlab-video-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn dir_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// A gradient moving right by 3 pixels per frame, with a bright right column and
/// bottom row (the edges that MP4 padding replicates).
fn frame(i: usize, w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if x == w - 1 || y == h - 1 {
            return image::Rgb([250, 250, 250]);
        }
        let t = ((x as usize + 3 * i) % w as usize) as f32 / w as f32;
        image::Rgb([(255.0 * t) as u8, (255.0 * y as f32 / h as f32) as u8, 128])
    })
}

fn write_mp4(path: &Path, fps: u32, n: usize) -> approxlab_view::VideoSummary {
    let opts = VideoOptions { fps, ..VideoOptions::default() };
    let mut w = VideoWriter::create(path, VideoFormat::Mp4, W, H, &opts).unwrap();
    for i in 0..n {
        w.push(&frame(i, W, H)).unwrap();
    }
    w.finish().unwrap()
}

// ---------------------------------------------------------------------------------
// A minimal ISO BMFF reader.

struct Bmff<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

fn boxes(mut data: &[u8]) -> Vec<Bmff<'_>> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size32 = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[4..8].try_into().unwrap();
        let (header, size) = match size32 {
            1 => (16, u64::from_be_bytes(data[8..16].try_into().unwrap()) as usize),
            0 => (8, data.len()),
            s => (8, s),
        };
        assert!(
            size >= header && size <= data.len(),
            "box {:?} of size {size} overruns",
            String::from_utf8_lossy(&kind)
        );
        out.push(Bmff { kind, body: &data[header..size] });
        data = &data[size..];
    }
    assert!(data.is_empty(), "{} trailing bytes after the last box", data.len());
    out
}

fn find<'a>(list: &[Bmff<'a>], kind: &[u8; 4]) -> &'a [u8] {
    list.iter().find(|b| &b.kind == kind).unwrap_or_else(|| panic!("no {:?} box", String::from_utf8_lossy(kind))).body
}

fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> &'a [u8] {
    kinds.iter().fold(data, |d, k| find(&boxes(d), k))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

struct Mp4Info {
    top: Vec<[u8; 4]>,
    timescale: u32,
    duration: u64,
    stsz: Vec<u32>,
    stts_total: u64,
    tkhd_size: (u32, u32),
    sync_samples: Vec<u32>,
    sample_offsets: Vec<u64>,
}

fn parse_mp4(data: &[u8]) -> Mp4Info {
    let top = boxes(data);
    let moov = find(&top, b"moov");
    let trak = path(moov, &[b"trak"]);
    let tkhd = path(trak, &[b"tkhd"]);
    // Full box: version(1) flags(3); width and height are the last 8 bytes, 16.16 fixed.
    let tkhd_size = (be32(tkhd, tkhd.len() - 8) >> 16, be32(tkhd, tkhd.len() - 4) >> 16);
    let mdhd = path(trak, &[b"mdia", b"mdhd"]);
    let (timescale, duration) =
        if mdhd[0] == 1 { (be32(mdhd, 20), be64(mdhd, 24)) } else { (be32(mdhd, 12), u64::from(be32(mdhd, 16))) };
    let stbl = path(trak, &[b"mdia", b"minf", b"stbl"]);
    let stbl_boxes = boxes(stbl);
    let stsz = find(&stbl_boxes, b"stsz");
    let (fixed, count) = (be32(stsz, 4), be32(stsz, 8) as usize);
    let sizes: Vec<u32> =
        if fixed != 0 { vec![fixed; count] } else { (0..count).map(|i| be32(stsz, 12 + 4 * i)).collect() };
    let stts = find(&stbl_boxes, b"stts");
    let mut stts_total = 0u64;
    let mut stts_count = 0usize;
    for e in 0..be32(stts, 4) as usize {
        let (c, d) = (be32(stts, 8 + 8 * e), be32(stts, 12 + 8 * e));
        stts_total += u64::from(c) * u64::from(d);
        stts_count += c as usize;
    }
    assert_eq!(stts_count, count, "stts and stsz sample counts differ");
    let stss = stbl_boxes.iter().find(|b| &b.kind == b"stss");
    let sync_samples =
        stss.map(|b| (0..be32(b.body, 4) as usize).map(|i| be32(b.body, 8 + 4 * i)).collect()).unwrap_or_default();
    // Sample offsets from stco / co64 + stsc + stsz.
    let chunk_offsets: Vec<u64> = match stbl_boxes.iter().find(|b| &b.kind == b"stco") {
        Some(b) => (0..be32(b.body, 4) as usize).map(|i| u64::from(be32(b.body, 8 + 4 * i))).collect(),
        None => {
            let b = find(&stbl_boxes, b"co64");
            (0..be32(b, 4) as usize).map(|i| be64(b, 8 + 8 * i)).collect()
        }
    };
    let stsc = find(&stbl_boxes, b"stsc");
    let runs: Vec<(u32, u32)> =
        (0..be32(stsc, 4) as usize).map(|e| (be32(stsc, 8 + 12 * e), be32(stsc, 12 + 12 * e))).collect();
    let mut sample_offsets = Vec::new();
    let mut s = 0usize;
    for (ci, &off) in chunk_offsets.iter().enumerate() {
        let chunk = ci as u32 + 1;
        let per_chunk = runs.iter().rev().find(|(first, _)| *first <= chunk).expect("stsc covers chunk").1;
        let mut o = off;
        for _ in 0..per_chunk {
            if s < count {
                sample_offsets.push(o);
                o += u64::from(sizes[s]);
                s += 1;
            }
        }
    }
    assert_eq!(sample_offsets.len(), count, "chunks hold every sample");
    Mp4Info {
        top: top.iter().map(|b| b.kind).collect(),
        timescale,
        duration,
        stsz: sizes,
        stts_total,
        tkhd_size,
        sync_samples,
        sample_offsets,
    }
}

#[test]
fn mp4_is_iso_bmff_with_all_frames_and_the_right_duration() {
    let d = scratch_dir("mp4-structure");
    let out = d.join("run.mp4");
    let fps = 30;
    let summary = write_mp4(&out, fps, N);
    let data = fs::read(&out).unwrap();
    let info = parse_mp4(&data);
    for k in [b"ftyp", b"moov", b"mdat"] {
        assert!(info.top.contains(k), "top-level {:?} missing: {:?}", String::from_utf8_lossy(k), info.top);
    }
    assert_eq!(&info.top[0], b"ftyp", "ftyp first");
    assert_eq!(info.stsz.len(), N, "one sample per pushed frame");
    assert!(info.stsz.iter().all(|&s| s > 0));
    let seconds = info.duration as f64 / f64::from(info.timescale);
    let want = N as f64 / f64::from(fps);
    assert!((seconds - want).abs() < 1.0 / f64::from(fps), "mdhd duration {seconds}s, want {want}s");
    assert!((seconds - want).abs() < 1e-3, "mdhd duration {seconds}s, want exactly {want}s");
    assert_eq!(info.stts_total, info.duration, "stts sums to the mdhd duration");
    assert_eq!(info.tkhd_size, (66, 34), "tkhd size is the padded even size");
    assert_eq!(info.sync_samples.first(), Some(&1), "first sample is a keyframe");
    // Summary agrees with the file.
    assert_eq!(summary.frames, N as u64);
    assert_eq!(summary.bytes, data.len() as u64);
    assert_eq!((summary.width, summary.height), (66, 34));
    assert!((summary.duration_s - want).abs() < 1e-9, "summary duration {}", summary.duration_s);
    assert_eq!(dir_names(&d), ["run.mp4"], "no temporary file is left");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mp4_duration_is_frames_over_fps_for_awkward_rates() {
    let d = scratch_dir("mp4-fps");
    for fps in [7, 24, 60] {
        let out = d.join(format!("r{fps}.mp4"));
        write_mp4(&out, fps, N);
        let info = parse_mp4(&fs::read(&out).unwrap());
        let seconds = info.duration as f64 / f64::from(info.timescale);
        let want = N as f64 / f64::from(fps);
        assert_eq!(info.stsz.len(), N, "fps {fps}");
        assert!((seconds - want).abs() < 0.5 / f64::from(fps), "fps {fps}: {seconds}s, want {want}s");
    }
    fs::remove_dir_all(&d).unwrap();
}

/// BT.601 limited-range luma, the reference for the decoded picture.
fn luma(p: [u8; 3]) -> f64 {
    16.0 + 219.0 / 255.0 * (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
}

#[test]
fn mp4_decodes_to_the_pushed_frames_with_replicated_edges() {
    use openh264::formats::YUVSource;
    let d = scratch_dir("mp4-decode");
    let out = d.join("run.mp4");
    write_mp4(&out, 30, N);
    let data = fs::read(&out).unwrap();
    let info = parse_mp4(&data);
    let mut dec = openh264::decoder::Decoder::new().unwrap();
    let mut decoded = 0;
    for (i, (&off, &size)) in info.sample_offsets.iter().zip(&info.stsz).enumerate() {
        // AVCC (4-byte lengths) to Annex B.
        let mut sample = &data[off as usize..off as usize + size as usize];
        let mut annexb = Vec::new();
        while !sample.is_empty() {
            let n = be32(sample, 0) as usize;
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(&sample[4..4 + n]);
            sample = &sample[4 + n..];
        }
        let Some(yuv) = dec.decode(&annexb).unwrap() else { continue };
        decoded += 1;
        assert_eq!(yuv.dimensions(), (66, 34), "decoded size is the padded size");
        let (stride, _, _) = yuv.strides();
        let src = frame(i, W, H);
        let mut err = 0.0;
        for y in 0..34u32 {
            for x in 0..66u32 {
                // Padding replicates the last column and row.
                let want = luma(src.get_pixel(x.min(W - 1), y.min(H - 1)).0);
                err += (f64::from(yuv.y()[y as usize * stride + x as usize]) - want).abs();
            }
        }
        let mean = err / (66.0 * 34.0);
        assert!(mean < 6.0, "frame {i}: mean luma error {mean}");
        // The padded column and row are as bright as the edge they replicate.
        let pad_col = f64::from(yuv.y()[10 * stride + 65]);
        let pad_row = f64::from(yuv.y()[33 * stride + 10]);
        assert!(pad_col > 200.0 && pad_row > 200.0, "frame {i}: padding {pad_col}, {pad_row}");
    }
    let decoded = decoded + dec.flush_remaining().unwrap().len();
    assert_eq!(decoded, N, "every sample decodes to a picture");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn single_frame_mp4_has_a_duration() {
    let d = scratch_dir("mp4-single");
    let out = d.join("one.mp4");
    let s = write_mp4(&out, 10, 1);
    let info = parse_mp4(&fs::read(&out).unwrap());
    let seconds = info.duration as f64 / f64::from(info.timescale);
    assert!(seconds >= 0.1 - 1e-6, "a lone frame is shown for a visible time, got {seconds}s");
    assert_eq!(s.frames, 1);
    assert!((s.duration_s - seconds).abs() < 1e-6);
    fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------------------------
// GIF

struct DecodedGif {
    repeat: gif::Repeat,
    size: (u16, u16),
    /// Width, height and delay (cs) of each frame.
    frames: Vec<(u16, u16, u16)>,
    /// RGBA pixels of each frame.
    pixels: Vec<Vec<u8>>,
}

fn decode_gif(path: &Path) -> DecodedGif {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    let mut pixels = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        frames.push((f.width, f.height, f.delay));
        pixels.push(f.buffer.to_vec());
    }
    DecodedGif { repeat: dec.repeat(), size: (dec.width(), dec.height()), frames, pixels }
}

#[test]
fn gif_has_all_frames_at_size_with_delays_summing_to_frames_over_fps() {
    let d = scratch_dir("gif");
    for (fps, delays) in [(25u32, vec![4u16; N]), (30, [3, 4, 3].repeat(N / 3))] {
        let out = d.join(format!("run{fps}.gif"));
        let opts = VideoOptions { fps, ..VideoOptions::default() };
        let mut w = VideoWriter::create(&out, VideoFormat::Gif, W, H, &opts).unwrap();
        for i in 0..N {
            w.push(&frame(i, W, H)).unwrap();
        }
        let s = w.finish().unwrap();
        let DecodedGif { repeat, size, frames, .. } = decode_gif(&out);
        assert_eq!(repeat, gif::Repeat::Infinite);
        assert_eq!(size, (W as u16, H as u16), "GIF keeps the odd size");
        assert_eq!(frames.len(), N);
        assert!(frames.iter().all(|&(fw, fh, _)| (u32::from(fw), u32::from(fh)) == (W, H)));
        let got: Vec<u16> = frames.iter().map(|f| f.2).collect();
        assert_eq!(got, delays, "fps {fps}");
        let total: u32 = got.iter().map(|&x| u32::from(x)).sum();
        assert_eq!(f64::from(total) / 100.0, N as f64 / f64::from(fps));
        assert!((s.duration_s - N as f64 / f64::from(fps)).abs() < 1e-9);
        assert_eq!(s.bytes, fs::metadata(&out).unwrap().len());
    }
    assert_eq!(dir_names(&d), ["run25.gif", "run30.gif"], "no temporary file is left");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn gif_with_colormap_palette_reproduces_the_heatmap_colours() {
    let d = scratch_dir("gif-palette");
    let out = d.join("heat.gif");
    let map = Colormap::Viridis;
    let palette = colormap_palette(map);
    assert_eq!(palette.len(), 256);
    let heat = |i: usize| {
        RgbImage::from_fn(W, H, |x, y| {
            if x == 0 && y == 0 {
                return image::Rgb(map.map(f32::NAN));
            }
            image::Rgb(palette[(x as usize * 4 + y as usize + i) % 255])
        })
    };
    let opts = VideoOptions { fps: 10, colormap_palette: Some(palette.clone()), ..VideoOptions::default() };
    let mut w = VideoWriter::create(&out, VideoFormat::Gif, W, H, &opts).unwrap();
    for i in 0..4 {
        w.push(&heat(i)).unwrap();
    }
    w.finish().unwrap();
    let DecodedGif { frames, pixels, .. } = decode_gif(&out);
    assert_eq!(frames.len(), 4);
    for (i, px) in pixels.iter().enumerate() {
        let want = heat(i);
        for (p, q) in px.chunks_exact(4).zip(want.pixels()) {
            assert_eq!(&p[..3], &q.0, "frame {i}: palette colours are exact");
        }
    }
    fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------------------------
// Frames directory, options and errors

#[test]
fn encode_frames_dir_encodes_every_png_in_name_order() {
    let d = scratch_dir("dir");
    let frames = d.join("frames");
    fs::create_dir(&frames).unwrap();
    for i in 0..N {
        write_png_atomic(frames.join(format!("step-{:08}.png", (i + 1) * 100)), &frame(i, W, H)).unwrap();
    }
    fs::write(frames.join("notes.txt"), "not a frame").unwrap();
    let opts = VideoOptions::default();
    let s = encode_frames_dir(&frames, d.join("run.mp4"), VideoFormat::Mp4, &opts).unwrap();
    assert_eq!(s.frames, N as u64);
    assert_eq!(parse_mp4(&fs::read(d.join("run.mp4")).unwrap()).stsz.len(), N);
    let s = encode_frames_dir(&frames, d.join("run.gif"), VideoFormat::Gif, &opts).unwrap();
    assert_eq!(s.frames, N as u64);
    let DecodedGif { size, frames: gif_frames, pixels, .. } = decode_gif(&d.join("run.gif"));
    assert_eq!(size, (W as u16, H as u16));
    assert_eq!(gif_frames.len(), N);
    // Name order: decoded frame i is closest to source frame i (the gradient moves).
    let sources: Vec<RgbImage> = (0..N).map(|i| frame(i, W, H)).collect();
    for (i, px) in pixels.iter().enumerate() {
        let dist = |src: &RgbImage| -> u64 {
            px.chunks_exact(4)
                .zip(src.pixels())
                .map(|(p, q)| (0..3).map(|k| u64::from(p[k].abs_diff(q.0[k]))).sum::<u64>())
                .sum()
        };
        let best = (0..N).min_by_key(|&j| dist(&sources[j])).unwrap();
        assert_eq!(best, i, "decoded frame {i} looks like source frame {best}");
    }
    assert_eq!(dir_names(&d), ["frames", "run.gif", "run.mp4"]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn encode_frames_dir_errors_name_the_problem() {
    let d = scratch_dir("dir-errors");
    let empty = d.join("empty");
    fs::create_dir(&empty).unwrap();
    let opts = VideoOptions::default();
    let e = encode_frames_dir(&empty, d.join("a.mp4"), VideoFormat::Mp4, &opts).unwrap_err().to_string();
    assert_eq!(e, format!("{}: has no frames (*.png); train with --frame-every N", empty.display()));

    let mixed = d.join("mixed");
    fs::create_dir(&mixed).unwrap();
    write_png_atomic(mixed.join("step-00000100.png"), &frame(0, W, H)).unwrap();
    write_png_atomic(mixed.join("step-00000200.png"), &frame(1, W + 1, H)).unwrap();
    let e = encode_frames_dir(&mixed, d.join("b.mp4"), VideoFormat::Mp4, &opts).unwrap_err().to_string();
    assert!(e.contains("step-00000200.png") && e.contains("66x33") && e.contains("65x33"), "{e}");

    let broken = d.join("broken");
    fs::create_dir(&broken).unwrap();
    write_png_atomic(broken.join("step-00000100.png"), &frame(0, W, H)).unwrap();
    fs::write(broken.join("step-00000200.png"), b"not a png").unwrap();
    let e = encode_frames_dir(&broken, d.join("c.gif"), VideoFormat::Gif, &opts).unwrap_err().to_string();
    assert!(e.contains("step-00000200.png") && e.contains("cannot read PNG"), "{e}");

    let missing = d.join("missing");
    let e = encode_frames_dir(&missing, d.join("d.gif"), VideoFormat::Gif, &opts).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");

    // Nothing was written next to the outputs.
    assert_eq!(dir_names(&d), ["broken", "empty", "mixed"]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn invalid_options_and_format_names_are_refused() {
    let d = scratch_dir("options");
    for fps in [0, MAX_FPS + 1] {
        let opts = VideoOptions { fps, ..VideoOptions::default() };
        let e = VideoWriter::create(d.join("x.mp4"), VideoFormat::Mp4, W, H, &opts).unwrap_err().to_string();
        assert_eq!(e, format!("invalid fps {fps}: expected 1..=120"));
        let e = encode_frames_dir(&d, d.join("x.gif"), VideoFormat::Gif, &opts).unwrap_err().to_string();
        assert!(e.starts_with("invalid fps"), "{e}");
    }
    for fps in [1, MAX_FPS] {
        assert!(VideoOptions { fps, ..VideoOptions::default() }.validate().is_ok());
    }
    let opts = VideoOptions { bitrate: Some(0), ..VideoOptions::default() };
    assert!(opts.validate().unwrap_err().to_string().contains("bitrate"));
    let opts = VideoOptions { colormap_palette: Some(vec![[0, 0, 0]; 257]), ..VideoOptions::default() };
    assert!(opts.validate().unwrap_err().to_string().contains("256"));
    let e = VideoWriter::create(d.join("x.mp4"), VideoFormat::Mp4, 4000, 100, &VideoOptions::default()).unwrap_err();
    assert!(e.to_string().contains("3840x2160"), "{e}");

    assert_eq!(VideoFormat::parse("mp4").unwrap(), VideoFormat::Mp4);
    assert_eq!(VideoFormat::parse("GIF").unwrap(), VideoFormat::Gif);
    assert_eq!("gif".parse::<VideoFormat>().unwrap(), VideoFormat::Gif);
    assert_eq!(VideoFormat::from_path("a/b.MP4"), Some(VideoFormat::Mp4));
    let e = VideoFormat::parse("avi").unwrap_err().to_string();
    assert_eq!(e, "unknown video format \"avi\"; known: mp4, gif");
    assert!(dir_names(&d).is_empty(), "{:?}", dir_names(&d));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn default_bitrate_scales_with_area_and_has_a_floor() {
    assert_eq!(approxlab_view::default_bitrate(66, 34, 30), 1_000_000);
    let hd = approxlab_view::default_bitrate(1920, 1080, 30);
    assert!((9_000_000..=10_000_000).contains(&hd), "{hd}");
    assert_eq!(approxlab_view::default_bitrate(1920, 1080, 60), 2 * hd);
    let opts = VideoOptions { bitrate: Some(123_456), ..VideoOptions::default() };
    assert_eq!(opts.bitrate_for(1920, 1080), 123_456);
}

#[test]
fn wrong_frame_size_is_refused_and_temp_files_do_not_survive() {
    for format in [VideoFormat::Mp4, VideoFormat::Gif] {
        let d = scratch_dir(&format!("push-{format}"));
        let out = d.join(format!("v.{format}"));
        let mut w = VideoWriter::create(&out, format, W, H, &VideoOptions::default()).unwrap();
        assert_eq!(dir_names(&d).len(), 1, "a temporary file while writing");
        assert!(!out.exists(), "nothing at the output before finish");
        w.push(&frame(0, W, H)).unwrap();
        let e = w.push(&frame(1, W, H + 1)).unwrap_err().to_string();
        assert!(e.contains("65x34") && e.contains("expected 65x33") && e.contains("frame 1"), "{e}");
        // Still usable after a refused frame.
        w.push(&frame(1, W, H)).unwrap();
        assert_eq!(w.finish().unwrap().frames, 2);
        assert_eq!(dir_names(&d), [format!("v.{format}")]);

        // Dropped unfinished: the temporary file goes, the old output stays.
        let mut w = VideoWriter::create(&out, format, W, H, &VideoOptions::default()).unwrap();
        w.push(&frame(0, W, H)).unwrap();
        drop(w);
        assert_eq!(dir_names(&d), [format!("v.{format}")]);

        // Finish without frames: an error, and no temporary file.
        let w = VideoWriter::create(d.join("empty.mp4"), format, W, H, &VideoOptions::default()).unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("no frames"), "{e}");
        assert_eq!(dir_names(&d), [format!("v.{format}")]);
        fs::remove_dir_all(&d).unwrap();
    }
}

/// Encode speed for 480x320 frames; run with
/// `cargo test -p approxlab-view --release --test video -- --ignored --nocapture`.
#[test]
#[ignore]
fn encode_speed_480x320() {
    let d = scratch_dir("speed");
    let frames: Vec<RgbImage> = (0..120).map(|i| frame(i, 480, 320)).collect();
    for format in [VideoFormat::Mp4, VideoFormat::Gif] {
        let t = std::time::Instant::now();
        let mut w =
            VideoWriter::create(d.join(format!("s.{format}")), format, 480, 320, &VideoOptions::default()).unwrap();
        for f in &frames {
            w.push(f).unwrap();
        }
        let s = w.finish().unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{format}: {} frames 480x320 in {secs:.2}s = {:.0} frames/s, {} bytes",
            s.frames,
            s.frames as f64 / secs,
            s.bytes
        );
    }
    let pal = VideoOptions { colormap_palette: Some(colormap_palette(Colormap::Inferno)), ..VideoOptions::default() };
    let t = std::time::Instant::now();
    let mut w = VideoWriter::create(d.join("p.gif"), VideoFormat::Gif, 480, 320, &pal).unwrap();
    for f in &frames {
        w.push(f).unwrap();
    }
    let s = w.finish().unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("gif+palette: {:.0} frames/s, {} bytes", s.frames as f64 / secs, s.bytes);
    fs::remove_dir_all(&d).unwrap();
}
