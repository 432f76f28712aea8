//! Helpers for the element-wise hot loops: run-time selection of an AVX2 + FMA build of a loop, and branch-free
//! math that the compiler vectorises (no libm calls).
//!
//! The kernels use plain multiplies and adds (never `mul_add`), so every build of a loop computes bitwise the same
//! values: the AVX2 build is only wider, and the binary still runs on CPUs without AVX2.

/// Defines `fn $name(args)` whose body is compiled twice, once with AVX2 and FMA enabled (used when the CPU has
/// them) and once for the baseline target.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// `exp(x)` in f32 to about 1 ulp (Cephes' `expf` polynomial), branch-free so that loops over it vectorise.
/// Saturates to 0 below -87.3 and to `f32::MAX`-ish above 88.7; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from the integer in t's mantissa: n + 127 in the exponent field.
    let scale = f32::from_bits(((t.to_bits() as i32 - 0x4B40_0000 + 127) << 23) as u32);
    e * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.013;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
        assert!(exp(200.0) > 1e38 && exp(200.0).is_finite());
        assert!(exp(f32::NAN).is_nan());
    }

    multiversion! {
        fn add_one(v: &mut [f32]) {
            for x in v.iter_mut() {
                *x += 1.0;
            }
        }
    }

    #[test]
    fn multiversioned_function_runs() {
        let mut v = vec![1.0f32; 37];
        add_one(&mut v);
        assert!(v.iter().all(|x| *x == 2.0));
    }
}
