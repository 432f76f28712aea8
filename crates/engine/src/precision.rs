//! Mixed precision: the dense layers' matrix products in bf16 (operands rounded to bf16, products accumulated and
//! returned in f32) where the CPU has bf16 dot products and oneDNN is installed; everything else stays f32 (master
//! weights, optimizer state, encodings, activations, head and loss).

use crate::linalg::{with_scratch, Op};
use crate::onednn;
use crate::parts::{self, Form, Part};
use serde::{Deserialize, Serialize};

/// `train.precision`: what the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionSetting {
    /// bf16 where the CPU has bf16 dot products (AVX512-BF16 or AMX-BF16) and oneDNN loads, else f32.
    #[default]
    Auto,
    F32,
    Bf16,
}

impl Part for PrecisionSetting {
    const KIND: &'static str = "precision";
    const FORMS: &'static [Form] = &[
        Form::new(
            "auto",
            "auto",
            &["auto"],
            "bf16 products where the CPU has bf16 dot products and oneDNN is installed, else f32",
        ),
        Form::new("f32", "f32", &["f32"], ""),
        Form::new("bf16", "bf16", &["bf16"], "products in bf16, f32 elsewhere"),
    ];

    fn from_form(form: &Form, args: &[&str]) -> crate::error::Result<Self> {
        parts::no_args::<Self>(form, args)?;
        Ok(match form.name {
            "auto" => PrecisionSetting::Auto,
            "f32" => PrecisionSetting::F32,
            "bf16" => PrecisionSetting::Bf16,
            _ => return Err(parts::unlisted::<Self>(form)),
        })
    }
}

impl std::str::FromStr for PrecisionSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as Part>::parse(s).map_err(parts::without_kind::<Self>)
    }
}

/// The precision of the products that actually run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// A resolved setting: the precision, why, and a notice when bf16 was asked for and is not available.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub precision: Precision,
    /// One line for logs, e.g. "bf16 products (oneDNN 2.6.3, AVX512-BF16), f32 accumulation".
    pub describe: String,
    /// Set when `bf16` was asked for explicitly and the run falls back to f32.
    pub notice: Option<String>,
}

/// Which bf16 dot-product instructions the CPU has, by name; `None` without any.
pub fn cpu_bf16() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        // cpuid exists on every x86-64 CPU; leaf 7 is asked for only where the highest leaf reaches it.
        // (An `unsafe` block for compilers before 1.89, where cpuid was an unsafe function.)
        #[allow(unused_unsafe)]
        let (l7, l7_1) = unsafe {
            if __cpuid_count(0, 0).eax < 7 {
                return None;
            }
            (__cpuid_count(7, 0), __cpuid_count(7, 1))
        };
        // The OS must also save the AVX-512 state, which std's detection checks (XCR0).
        let avx512 = std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw");
        let amx_bf16 = l7.edx & (1 << 22) != 0;
        let avx512_bf16 = l7_1.eax & (1 << 5) != 0;
        if avx512 && avx512_bf16 {
            return Some(if amx_bf16 { "AVX512-BF16 + AMX-BF16" } else { "AVX512-BF16" });
        }
        if avx512 && amx_bf16 {
            return Some("AMX-BF16");
        }
    }
    None
}

impl PrecisionSetting {
    /// Decides the precision on this machine. `auto` picks bf16 only where the CPU has bf16 dot products: on
    /// CPUs without them oneDNN would emulate bf16 and be slower than f32.
    pub fn resolve(self) -> Resolved {
        let f32_line = |why: &str| format!("f32 products ({why})");
        let bf16 = || -> Result<String, String> {
            let isa = cpu_bf16().ok_or_else(|| "this CPU has no AVX512-BF16 or AMX-BF16".to_string())?;
            let lib = onednn::library().map_err(|e| {
                format!("{e}; install oneDNN (Debian: apt-get install libdnnl2) or set APPROXLAB_ONEDNN=/path")
            })?;
            Ok(format!("bf16 products ({}, {isa}), f32 accumulation and weights", lib.version))
        };
        match self {
            PrecisionSetting::F32 => Resolved { precision: Precision::F32, describe: f32_line("asked"), notice: None },
            PrecisionSetting::Auto => match bf16() {
                Ok(describe) => Resolved { precision: Precision::Bf16, describe, notice: None },
                Err(why) => Resolved { precision: Precision::F32, describe: f32_line(&why), notice: None },
            },
            PrecisionSetting::Bf16 => match bf16() {
                Ok(describe) => Resolved { precision: Precision::Bf16, describe, notice: None },
                Err(why) => Resolved {
                    precision: Precision::F32,
                    describe: f32_line(&why),
                    notice: Some(format!("precision bf16 is not available ({why}); training in f32")),
                },
            },
        }
    }
}

/// f32 to bf16, rounding to nearest even; NaN stays NaN.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    let rounded = (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16;
    let quiet_nan = ((u >> 16) | 0x40) as u16;
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        quiet_nan
    } else {
        rounded
    }
}

#[inline(always)]
pub fn from_bf16(x: u16) -> f32 {
    f32::from_bits((x as u32) << 16)
}

/// `dst[i] = f(src[i])`, compiled with AVX-512 where the CPU has it so that the loop runs 16 lanes wide.
#[inline(always)]
fn map_elements<S: Copy, D>(src: &[S], dst: &mut [D], f: impl Fn(S) -> D + Copy) {
    #[inline(always)]
    fn body<S: Copy, D>(src: &[S], dst: &mut [D], f: impl Fn(S) -> D) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f(*s);
        }
    }
    assert_eq!(src.len(), dst.len(), "{} values into {}", src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn wide<S: Copy, D>(src: &[S], dst: &mut [D], f: impl Fn(S) -> D) {
            body(src, dst, f)
        }
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has the features `wide` is compiled for.
            return unsafe { wide(src, dst, f) };
        }
    }
    body(src, dst, f)
}

/// Rounds `src` to bf16 into `dst` (of the same length).
pub fn convert(src: &[f32], dst: &mut [u16]) {
    map_elements(src, dst, to_bf16)
}

/// Widens bf16 `src` to f32 into `dst` (of the same length), exactly.
pub fn widen(src: &[u16], dst: &mut [f32]) {
    map_elements(src, dst, from_bf16)
}

/// f32 storage seen as twice as many bf16 values (for activations saved in bf16 inside an f32 workspace).
pub fn as_bf16(s: &[f32]) -> &[u16] {
    // SAFETY: every bit pattern is a valid u16, u16's alignment divides f32's, and the length covers the same bytes.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u16>(), s.len() * 2) }
}

/// As [`as_bf16`], mutable.
pub fn as_bf16_mut(s: &mut [f32]) -> &mut [u16] {
    // SAFETY: as in `as_bf16`; every bit pattern written through it is also a valid f32.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u16>(), s.len() * 2) }
}

/// A product's operand: f32 (rounded to bf16 into a scratch buffer by the product) or already bf16.
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

impl Operand<'_> {
    fn len(&self) -> usize {
        match self {
            Operand::F32(s) => s.len(),
            Operand::Bf16(s) => s.len(),
        }
    }
}

thread_local! {
    /// Rounded f32 operands of [`matmul_bf16`], left and right: grown once to the largest operands seen, then reused.
    static ROUNDED_A: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    static ROUNDED_B: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The smallest row count, width or depth of a product worth running in bf16 (see [`worth_bf16`]).
pub const BF16_MIN_DIM: usize = 16;

/// Whether a dense product of these sizes runs in bf16: narrow products (a layer to a few outputs) gain nothing from
/// bf16 and would lose precision where it matters most, next to the loss.
pub fn worth_bf16(m: usize, n: usize, k: usize) -> bool {
    m.min(n).min(k) >= BF16_MIN_DIM
}

/// `c[m, n] = (accumulate ? c : 0) + op(a)[m, k] op(b)[k, n]` with the operands rounded to bf16 and the products
/// summed in f32, on the calling thread (the engine calls it per block, already in parallel). The layouts are those
/// of [`crate::linalg::matmul`]. Falls back to the f32 product when oneDNN is not loaded or refuses the call.
#[allow(clippy::too_many_arguments)]
pub fn matmul_bf16(
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    op_a: Op,
    b: Operand,
    op_b: Op,
    c: &mut [f32],
    accumulate: bool,
) {
    if crate::linalg::empty_product("matmul_bf16", (m, n, k), (a.len(), b.len()), c, accumulate) {
        return;
    }
    let Ok(lib) = onednn::library() else {
        return matmul_f32(m, n, k, a, op_a, b, op_b, c, accumulate);
    };
    let done = with_scratch(&ROUNDED_A, |ra| {
        with_scratch(&ROUNDED_B, |rb| {
            let a16 = rounded(a, m * k, ra);
            let b16 = rounded(b, k * n, rb);
            // Row-major leading dimensions of the stored operands: [m, k] or [k, m]; [k, n] or [n, k].
            let lda = if op_a == Op::N { k } else { m };
            let ldb = if op_b == Op::N { n } else { k };
            // SAFETY: `empty_product` checked that both operands and `c` cover their sizes; `c` aliases neither.
            unsafe {
                lib.gemm_bf16(
                    (m, n, k),
                    (a16.as_ptr(), op_a == Op::T, lda),
                    (b16.as_ptr(), op_b == Op::T, ldb),
                    c.as_mut_ptr(),
                    n,
                    accumulate,
                )
            }
        })
    });
    if !done {
        matmul_f32(m, n, k, a, op_a, b, op_b, c, accumulate);
    }
}

/// `op`'s first `len` elements as bf16: the operand itself, or its rounding into `buf`.
fn rounded<'a>(op: Operand<'a>, len: usize, buf: &'a mut Vec<u16>) -> &'a [u16] {
    match op {
        Operand::Bf16(s) => &s[..len],
        Operand::F32(s) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            convert(&s[..len], &mut buf[..len]);
            &buf[..len]
        }
    }
}

/// The f32 product of the same operands (bf16 ones widened), for when bf16 cannot run.
#[allow(clippy::too_many_arguments)]
fn matmul_f32(m: usize, n: usize, k: usize, a: Operand, op_a: Op, b: Operand, op_b: Op, c: &mut [f32], acc: bool) {
    fn widen<'a>(op: Operand<'a>, len: usize) -> std::borrow::Cow<'a, [f32]> {
        match op {
            Operand::F32(s) => std::borrow::Cow::Borrowed(&s[..len]),
            Operand::Bf16(s) => std::borrow::Cow::Owned(s[..len].iter().map(|&v| from_bf16(v)).collect()),
        }
    }
    let (a, b) = (widen(a, m * k), widen(b, k * n));
    crate::linalg::matmul(m, n, k, &a, op_a, &b, op_b, c, acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_bf16_is_to_nearest_even_and_keeps_specials() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: ties go to even (1 + 2^-6).
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1e-6)), 1.0 + 1.0 / 128.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(f32::NEG_INFINITY)), f32::NEG_INFINITY);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        // A NaN whose payload is only in the low bits must not round to infinity.
        assert!(from_bf16(to_bf16(f32::from_bits(0x7f80_0001))).is_nan());
        // The largest finite f32 rounds up to infinity, as in IEEE rounding.
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        // Half a unit in the last of bf16's 8 significant bits: at most 2^-8 of the value for normal numbers.
        for i in 0..10_000 {
            let x = (i as f32 * 0.7123).sin() * 10f32.powi(i % 7 - 3);
            let y = from_bf16(to_bf16(x));
            assert!((x - y).abs() <= x.abs() / 256.0, "{x} -> {y}");
        }
        let src: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).cos() * 3.0).collect();
        let mut wide = vec![0u16; 1000];
        convert(&src, &mut wide);
        assert!(src.iter().zip(&wide).all(|(s, w)| to_bf16(*s) == *w), "the vectorised conversion agrees");
        let mut back = vec![0f32; 1000];
        widen(&wide, &mut back);
        assert!(back.iter().zip(&wide).all(|(b, w)| b.to_bits() == from_bf16(*w).to_bits()), "widening is exact");
        // f32 storage seen as bf16 holds twice as many values and reads back what was written.
        let mut storage = vec![0f32; 4];
        as_bf16_mut(&mut storage).copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 0xffff]);
        assert_eq!(as_bf16(&storage), &[1, 2, 3, 4, 5, 6, 7, 0xffff]);
    }

    #[test]
    fn settings_parse_and_bad_ones_name_the_choices() {
        assert_eq!("bf16".parse::<PrecisionSetting>(), Ok(PrecisionSetting::Bf16));
        assert_eq!(" f32 ".parse::<PrecisionSetting>(), Ok(PrecisionSetting::F32));
        let e = "fp8".parse::<PrecisionSetting>().unwrap_err();
        assert!(e.contains("'fp8'") && e.contains("auto, f32 or bf16"), "{e}");
        let r = PrecisionSetting::F32.resolve();
        assert_eq!((r.precision, r.notice), (Precision::F32, None));
        // Where bf16 cannot run, asking for it falls back to f32 with a notice; where it can, it runs.
        let r = PrecisionSetting::Bf16.resolve();
        match r.precision {
            Precision::Bf16 => assert!(cpu_bf16().is_some() && onednn::library().is_ok() && r.notice.is_none()),
            Precision::F32 => assert!(r.notice.expect("a notice").contains("training in f32")),
        }
        assert_eq!(PrecisionSetting::Auto.resolve().precision, r.precision);
    }
    #[test]
    fn bf16_products_match_a_float64_reference_for_every_layout() {
        if let Err(e) = onednn::library() {
            eprintln!("skipped: {e}");
            return;
        }
        for (m, n, k) in [(37, 29, 53), (256, 256, 258), (1, 29, 53), (37, 1, 53), (300, 17, 1), (16, 512, 256)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 997) as f32 / 97.0 - 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 991) as f32 / 89.0 - 5.5).collect();
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    let at = |i: usize, p: usize| if op_a == Op::N { a[i * k + p] } else { a[p * m + i] };
                    let bt = |p: usize, j: usize| if op_b == Op::N { b[p * n + j] } else { b[j * k + p] };
                    let b16: Vec<u16> = b.iter().map(|&v| to_bf16(v)).collect();
                    for accumulate in [false, true] {
                        let before = if accumulate { 1.0 } else { f32::NAN };
                        let mut c = vec![before; m * n];
                        // One operand as f32 (rounded by the product), the other already bf16.
                        matmul_bf16(m, n, k, Operand::F32(&a), op_a, Operand::Bf16(&b16), op_b, &mut c, accumulate);
                        for i in 0..m {
                            for j in 0..n {
                                let base = if accumulate { 1.0 } else { 0.0 };
                                let (mut exact, mut rounded, mut magnitude) = (base, base, 0.0f64);
                                for p in 0..k {
                                    let (x, y) = (at(i, p) as f64, bt(p, j) as f64);
                                    exact += x * y;
                                    rounded +=
                                        from_bf16(to_bf16(at(i, p))) as f64 * from_bf16(to_bf16(bt(p, j))) as f64;
                                    magnitude += (x * y).abs();
                                }
                                let got = c[i * n + j] as f64;
                                // Each operand is within 2^-8 of its value after rounding, so each product is
                                // within 2^-7 (+ 2^-16); f32 accumulation adds at most (k + 2) * 2^-24 of the sum
                                // of magnitudes.
                                let accumulation = (k as f64 + 2.0) * f32::EPSILON as f64 / 2.0 * (magnitude + 1.0);
                                let bound = magnitude * (1.0 / 128.0 + 1.0 / 65_536.0) + accumulation;
                                assert!(
                                    (got - exact).abs() <= bound,
                                    "{m}x{n}x{k} {op_a:?}{op_b:?} acc {accumulate}: {got} vs {exact} (bound {bound})"
                                );
                                // And it is the product of the rounded operands, summed in f32: the operands were
                                // rounded to nearest, not truncated.
                                assert!(
                                    (got - rounded).abs() <= accumulation,
                                    "{m}x{n}x{k} {op_a:?}{op_b:?}: {got} vs {rounded} of the rounded operands"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
