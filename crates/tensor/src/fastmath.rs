//! Branch-free `f32` approximations of `exp`, `ln(1 + e^(−|x|))` and `tanh` that the compiler
//! vectorizes (std's `expf`/`log1pf`/`tanhf` are opaque library calls, one element at a
//! time). Each stays within 2 ulp of the exact value over its whole range (see the tests);
//! `f64` keeps std's functions, since gradient checks run in `f64`.

/// Rounds to the nearest integer (ties away from zero do not matter here) with the
/// 1.5·2²³ trick, which needs no SSE4.1 `roundps` and so vectorizes on baseline x86-64.
#[inline(always)]
fn round_magic(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (x + MAGIC) - MAGIC
}

/// `e^x` for `f32`, within 2 ulp of `f32::exp`; 0 below −103.97 and +∞ above 88.72,
/// NaN for NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Clamp so that 2^n stays representable in the two-step scaling below.
    let xc = x.clamp(-104.0, 89.0);
    let n = round_magic(xc * LOG2E);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    // e^r on |r| ≤ ln2/2: Cephes' degree-6 minimax polynomial.
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // 2^n as two factors so that n down to −150 (subnormals) and up to 128 work. The
    // integer n is read from the bits of n + 1.5·2²³ (no float-to-int conversion, which
    // would not vectorize).
    let ni = (n + 12_582_912.0).to_bits() as i32 - 0x4B40_0000;
    let half = ni >> 1;
    let s1 = f32::from_bits(((half + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - half + 127) as u32) << 23);
    let y = er * s1 * s2;
    let y = if x > 88.722_84 { f32::INFINITY } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `ln(1 + e^(−|x|))` for `f32`: the part of softplus (`max(x, 0) + ln(1 + e^(−|x|))`)
/// and of the Bernoulli log-likelihood with logits that needs a logarithm. Within 2 ulp of
/// the exact value (see the tests); 0 for ±∞, NaN for NaN.
///
/// With `e = e^(−|x|)` in [0, 1], `1 + e = 2^k·(1 + f)` with `f` in [√½ − 1, √2 − 1]: `f = e`
/// (`k = 0`) or `(e − 1)/2` (`k = 1`), both computed from `e` without rounding `1 + e` (for
/// e ≥ ½ the subtraction is exact, and below it is off by under half an ulp of `f`). So
/// there is no exponent to take apart, no division and no special case, where a general
/// `ln(1 + y)` needs all three; then Cephes' `logf` polynomial gives `ln(1 + f)`.
#[inline(always)]
pub fn softplus_tail_f32(x: f32) -> f32 {
    const SQRT2_MINUS_1: f32 = std::f32::consts::SQRT_2 - 1.0;
    let e = exp_f32(-x.abs());
    let big = e > SQRT2_MINUS_1;
    let f = if big { (e - 1.0) * 0.5 } else { e };
    let k = if big { 1.0 } else { 0.0 };
    let z = f * f;
    // Cephes logf: ln(1 + f) = f − f²/2 + f³·P(f); ln 2 in two parts.
    let p = 7.037_683_6e-2;
    let p = p * f - 1.151_461e-1;
    let p = p * f + 1.167_699_9e-1;
    let p = p * f - 1.242_014_1e-1;
    let p = p * f + 1.424_932_3e-1;
    let p = p * f - 1.666_805_8e-1;
    let p = p * f + 2.000_071_5e-1;
    let p = p * f - 2.499_999_4e-1;
    let p = p * f + 3.333_333e-1;
    let y = f * z * p + k * -2.121_944_4e-4 - 0.5 * z;
    f + y + k * 0.693_359_4
}

/// `tanh x` for `f32`, within 2 ulp of `f32::tanh`; ±1 beyond |x| ≈ 9, NaN for NaN.
/// Below |x| = 0.625 an odd minimax polynomial (Cephes' `tanhf`), above it
/// `1 − 2/(e^{2|x|} + 1)` with the sign put back; both are computed and one selected, so
/// the loop vectorizes.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    // e^{2|x|} overflows to +∞ above |x| ≈ 44, where 2/∞ = 0 gives exactly 1.
    let large = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    let large = if x < 0.0 { -large } else { large };
    if a < 0.625 {
        small
    } else if x.is_nan() {
        x
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * (i as f32 / n as f32))
    }

    #[test]
    fn exp_within_two_ulp_of_std() {
        let mut worst = 0;
        for x in sweep(-103.0, 88.7, 2_000_000).chain(sweep(-1.0, 1.0, 200_000)) {
            let (got, want) = (exp_f32(x), x.exp());
            if want.is_normal() {
                worst = worst.max(ulps(got, want));
            } else {
                assert!((got - want).abs() <= f32::MIN_POSITIVE * 1e-6 + 2.0 * f32::EPSILON * want, "{x}");
            }
        }
        assert!(worst <= 2, "exp: {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-1e4), 0.0);
        assert_eq!(exp_f32(1e4), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_within_two_ulp_of_std() {
        let mut worst = (0, 0.0);
        let xs = sweep(-12.0, 12.0, 2_000_000)
            .chain(sweep(-0.7, 0.7, 400_000))
            .chain((0..400).map(|i| 10f32.powf(-40.0 + i as f32 * 0.1)))
            .chain([0.625, -0.625, 0.624_999_94, 1e4, -1e4, f32::MAX, f32::INFINITY, f32::NEG_INFINITY]);
        for x in xs {
            let (got, want) = (tanh_f32(x), x.tanh());
            assert_eq!(got.is_sign_negative(), want.is_sign_negative(), "{x}");
            let u = ulps(got.abs(), want.abs());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "tanh: {} ulp at {}", worst.0, worst.1);
        assert_eq!((tanh_f32(0.0), tanh_f32(20.0), tanh_f32(-50.0)), (0.0, 1.0, -1.0));
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn softplus_tail_within_two_ulp_of_exact() {
        let mut worst = (0, 0.0);
        let xs = sweep(-20.0, 20.0, 2_000_000)
            .chain(sweep(-0.01, 0.01, 100_000))
            .chain(sweep(80.0, 110.0, 100_000))
            .chain([0.0, -0.0, 0.881_373_6, 0.881_373_5, 0.881_373_7, 1e-30, 1e4]);
        for x in xs {
            let want = (-(x.abs() as f64)).exp().ln_1p() as f32;
            let got = softplus_tail_f32(x);
            let u = if want == 0.0 || !want.is_normal() {
                assert!((got - want).abs() <= 2.0 * f32::from_bits(1), "{x}: {got} vs {want}");
                0
            } else {
                ulps(got, want)
            };
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "softplus tail: {} ulp at {}", worst.0, worst.1);
        assert_eq!(softplus_tail_f32(f32::INFINITY), 0.0);
        assert_eq!(softplus_tail_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(softplus_tail_f32(0.0), std::f32::consts::LN_2);
        assert!(softplus_tail_f32(f32::NAN).is_nan());
    }
}
