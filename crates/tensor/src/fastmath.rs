//! Branch-free `f32` approximations of `exp` and `ln(1 + x)` that the compiler vectorizes
//! (std's `expf`/`log1pf` are opaque library calls, one element at a time). Both stay within
//! 2 ulp of std over their whole range (see the tests); `f64` keeps std's functions, since
//! gradient checks run in `f64`.

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

/// `ln(x)` for positive normal `f32` and +∞ (the callers below never pass other values).
#[inline(always)]
fn ln_positive(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m · 2^e with m in [1, 2).
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    // Move m into [√½, √2) so that f = m − 1 is small (selects, not branches).
    let big = m > 2.0 * SQRT_HALF;
    m = if big { m * 0.5 } else { m };
    e += big as i32;
    let f = m - 1.0;
    let z = f * f;
    // Cephes logf: ln(1 + f) = f − f²/2 + f³·P(f).
    let p = 7.037_683_6e-2;
    let p = p * f - 1.151_461e-1;
    let p = p * f + 1.167_699_9e-1;
    let p = p * f - 1.242_014_1e-1;
    let p = p * f + 1.424_932_3e-1;
    let p = p * f - 1.666_805_8e-1;
    let p = p * f + 2.000_071_5e-1;
    let p = p * f - 2.499_999_4e-1;
    let p = p * f + 3.333_333e-1;
    let ef = e as f32;
    let y = f * z * p + ef * -2.121_944_4e-4 - 0.5 * z;
    let y = f + y + ef * 0.693_359_4;
    if x == f32::INFINITY {
        x
    } else {
        y
    }
}

/// `ln(1 + x)` for `f32` and `x ≥ 0` (the range softplus and BCE need), within 2 ulp of
/// `f32::ln_1p`, accurate for tiny `x` too.
#[inline(always)]
pub fn ln_1p_f32(x: f32) -> f32 {
    let u = 1.0 + x;
    // ln(u)·x/(u − 1) corrects the rounding of 1 + x (Goldberg's trick); when u == 1, x is
    // below half an ulp of 1 and ln(1 + x) = x to working precision. All paths are computed
    // and selected, so the loop vectorizes.
    let inf = u == f32::INFINITY;
    let ln = ln_positive(if inf { x } else { u });
    let corrected = ln * (x / (u - 1.0));
    if u == 1.0 {
        x
    } else if inf {
        ln
    } else {
        corrected
    }
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
    fn ln_1p_within_two_ulp_of_std() {
        let mut worst = 0;
        let xs = sweep(0.0, 1.0, 1_000_000)
            .chain((0..400).map(|i| 10f32.powf(-40.0 + i as f32 * 0.2)))
            .chain(sweep(1.0, 1e6, 100_000))
            .chain([f32::MAX, 1e-45, 3e38]);
        for x in xs {
            worst = worst.max(ulps(ln_1p_f32(x), x.ln_1p()));
        }
        assert!(worst <= 2, "ln_1p: {worst} ulp");
        assert_eq!(ln_1p_f32(0.0), 0.0);
        assert_eq!(ln_1p_f32(f32::INFINITY), f32::INFINITY);
    }
}
