//! A product kernel of our own for `C = alpha·A·B + beta·C` in `f32` when `B`'s rows are
//! contiguous and `C` has few rows or `A` few columns: a layer's input gradient `G·W` at a
//! small batch, and its weight gradient `Gᵀ·X` at a small batch (and, with AVX-512, products
//! of many rows where it gives matrixmultiply's bits, which the next paragraph makes
//! possible: `same_bits_as_library` in the parent module). Each row of `C` is a sum of
//! rows of `B` scaled by elements of `A` (read at any strides): a register tile of rows of
//! `C` (8 rows by 48 columns on AVX-512, 6 by 16 on AVX2) takes one element of `A` per row
//! (broadcast) and one run of `B`'s row per step, straight from where they lie, and writes
//! `C` from its registers. No packing. The tiles sweep the rows of `C` under one panel of
//! 48 columns before the next, so the panel of `B` they all read stays in the core's
//! caches.
//!
//! Every element is one chain of fused multiply-adds over `p` in increasing order from +0,
//! on every path and in any tile, then `alpha·s`, or `alpha·s + beta·c` (unfused, as
//! [`write_scaled`] computes it; the AVX-512 tile does this in registers and stores into
//! `C` directly): the bits depend on neither the CPU nor the tiling. The portable path is
//! the reference (and what Miri runs); AVX-512F and AVX2 + FMA are chosen at run time.

use super::write_scaled;
use crate::simd::Path;

/// Rows of `C` per tile of the portable path.
const MR: usize = 4;
/// Columns of `C` per panel of `B` (three 16-lane vectors of the AVX-512 tile).
const NC: usize = 48;

/// `C = alpha·A·B + beta·C` for `A` `m×k` with strides `(rsa, csa)`, `B` `k×n` whose row
/// `p` is `b[p·ldb..][..n]`, and `C` `m×n` whose row `i` is `c[i·ldc..][..n]`; `C` is not
/// read when `beta` is 0. Panics, before touching memory, if a matrix reaches past its slice.
#[allow(clippy::too_many_arguments)]
pub fn axpy_nn(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: (&[f32], usize, usize),
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    axpy_nn_on(Path::detect(), m, n, k, alpha, a, b, ldb, beta, c, ldc)
}

/// [`axpy_nn`] on the given path (off x86-64 only the portable one exists).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn axpy_nn_on(
    path: Path,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: (&[f32], usize, usize),
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (a, rsa, csa) = a;
    // With k = 0 nothing of `a` is read.
    let last_a = || (m - 1).checked_mul(rsa)?.checked_add((k - 1).checked_mul(csa)?);
    let a_fits = k == 0 || last_a().is_some_and(|end| end < a.len());
    let fits = |rows: usize, ld: usize, cols: usize, len: usize| {
        rows == 0
            || (rows - 1).checked_mul(ld).and_then(|r| r.checked_add(cols)).is_some_and(|end| end <= len)
    };
    assert!(
        a_fits && fits(k, ldb, n, b.len()) && fits(m, ldc, n, c.len()),
        "axpy_nn: a {m}x{k} (strides {rsa}, {csa}), b {k}x{n} (ld {ldb}) or c {m}x{n} (ld {ldc}) reaches past its slice"
    );
    // Column panels outside, row tiles inside: a panel of `B` (`k` runs of `NC` floats) is
    // read by every tile of rows while it is still in the core's caches.
    let mut sums = [[0f32; NC]; MR];
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        // With k = 0 the slice may end before this start; nothing is read then.
        let bt = b.get(j0..).unwrap_or(&[]);
        #[cfg(target_arch = "x86_64")]
        if path == Path::Avx512 {
            for i0 in (0..m).step_by(x86::MR512) {
                let mr = x86::MR512.min(m - i0);
                let at = a.get(i0 * rsa..).unwrap_or(&[]);
                // SAFETY: `detect` chose this path only on a CPU with AVX-512F; every element
                // the tile reads (`a` at r·rsa + p·csa, `b` at p·ldb + j for r < mr, p < k,
                // j < nc) lies inside its slice, and so does every element it writes (`c`
                // at (i0 + r)·ldc + j0 + j), all checked above.
                unsafe {
                    x86::avx512_tile(
                        mr,
                        nc,
                        k,
                        (at.as_ptr(), rsa, csa),
                        bt.as_ptr(),
                        ldb,
                        (alpha, beta),
                        c.as_mut_ptr().add(i0 * ldc + j0),
                        ldc,
                    )
                };
            }
            continue;
        }
        #[cfg(target_arch = "x86_64")]
        if path == Path::Avx2 {
            for i0 in (0..m).step_by(x86::MR256) {
                let mr = x86::MR256.min(m - i0);
                let at = a.get(i0 * rsa..).unwrap_or(&[]);
                for j1 in (0..nc).step_by(x86::NC256) {
                    let ncs = x86::NC256.min(nc - j1);
                    let bs = bt.get(j1..).unwrap_or(&[]);
                    // SAFETY: `detect` chose this path only on a CPU with AVX2 and FMA; every
                    // element the tile reads (`a` at r·rsa + p·csa, `b` at p·ldb + j0 + j1 + j
                    // for r < mr, p < k, j < ncs) lies inside its slice, and so does every
                    // element it writes (`c` at (i0 + r)·ldc + j0 + j1 + j), all checked above.
                    unsafe {
                        x86::avx2_tile(
                            mr,
                            ncs,
                            k,
                            (at.as_ptr(), rsa, csa),
                            bs.as_ptr(),
                            ldb,
                            (alpha, beta),
                            c.as_mut_ptr().add(i0 * ldc + j0 + j1),
                            ldc,
                        )
                    };
                }
            }
            continue;
        }
        for i0 in (0..m).step_by(MR) {
            let mr = MR.min(m - i0);
            let at = a.get(i0 * rsa..).unwrap_or(&[]);
            portable_tile(mr, nc, k, (at, rsa, csa), bt, ldb, &mut sums);
            for (r, row) in sums.iter().enumerate().take(mr) {
                write_scaled(&mut c[(i0 + r) * ldc + j0..][..nc], row, alpha, beta);
            }
        }
    }
}

/// `sums[r][j] = Σ_p a[r·rsa + p·csa]·b[p·ldb + j]` for `r < mr`, `j < nc`, each one chain
/// of fused multiply-adds in increasing `p`: the reference the vector tiles are tested
/// against. The caller has checked the bounds.
fn portable_tile(
    mr: usize,
    nc: usize,
    k: usize,
    (a, rsa, csa): (&[f32], usize, usize),
    b: &[f32],
    ldb: usize,
    sums: &mut [[f32; NC]; MR],
) {
    debug_assert!(mr <= MR && nc <= NC);
    debug_assert!(k == 0 || ((mr - 1) * rsa + (k - 1) * csa < a.len() && (k - 1) * ldb + nc <= b.len()));
    for (r, row) in sums.iter_mut().enumerate().take(mr) {
        for (j, s) in row.iter_mut().enumerate().take(nc) {
            let mut acc = 0f32;
            for p in 0..k {
                acc = a[r * rsa + p * csa].mul_add(b[p * ldb + j], acc);
            }
            *s = acc;
        }
    }
}

// The loops index the register tile by row and vector, as the tile is drawn.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::NC;

    /// Rows of `C` per AVX-512 register tile: 8 rows by 3 vectors is 24 accumulators, with
    /// the 3 vectors of `B` and a broadcast, 28 of the 32 registers.
    pub(super) const MR512: usize = 8;
    const _: () = assert!(NC.is_multiple_of(16));

    /// The AVX-512F tile: rows `0..mr` and columns `0..nc` of `C = alpha·A·B + beta·C`, in
    /// `NC / 16` vectors of columns per row; vectors past `nc` are loaded and stored masked
    /// (lanes past `nc` touch no memory). Each element is the same chain of fused
    /// multiply-adds as on the other paths, then `alpha·s` (`+ beta·c` when `beta` ≠ 0) as
    /// separate multiplies and an add, as [`write_scaled`](super::write_scaled) computes it.
    /// One instantiation per row count, whose loops the compiler unrolls into registers.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a.0` holds the `mr×k` elements at `r·a.1 + p·a.2`, `b` the `k`
    /// runs of `nc` floats `ldb` apart, and `c` the `mr` runs of `nc` floats `ldc` apart,
    /// which nothing else reads or writes during the call; `1 ≤ mr ≤ MR512`, `nc ≤ NC`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx512_tile(
        mr: usize,
        nc: usize,
        k: usize,
        a: (*const f32, usize, usize),
        b: *const f32,
        ldb: usize,
        scale: (f32, f32),
        c: *mut f32,
        ldc: usize,
    ) {
        let mut masks = [0 as __mmask16; NC / 16];
        for (v, mask) in masks.iter_mut().enumerate() {
            let left = nc.saturating_sub(16 * v);
            *mask = if left >= 16 { 0xffff } else { (1u16 << left) - 1 };
        }
        // One instantiation per row count and vector count (a last run of at most 16 or 32
        // columns skips the vectors it would only mask off).
        macro_rules! rows {
            ($v:literal) => {
                // SAFETY (every arm): the caller's contract, with `R = mr` and `V` vectors
                // covering `nc`.
                unsafe {
                    match mr {
                        8 => avx512_rows::<8, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        7 => avx512_rows::<7, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        6 => avx512_rows::<6, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        5 => avx512_rows::<5, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        4 => avx512_rows::<4, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        3 => avx512_rows::<3, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        2 => avx512_rows::<2, $v>(k, a, b, ldb, masks, scale, c, ldc),
                        _ => avx512_rows::<1, $v>(k, a, b, ldb, masks, scale, c, ldc),
                    }
                }
            };
        }
        match nc.div_ceil(16) {
            3 => rows!(3),
            2 => rows!(2),
            _ => rows!(1),
        }
    }

    /// [`avx512_tile`] for `R` rows and the first `V` vectors of columns.
    ///
    /// # Safety
    /// As for [`avx512_tile`] with `mr = R` and `nc ≤ 16·V`; `masks` cover no lane past the
    /// runs of `b` and `c`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx512_rows<const R: usize, const V: usize>(
        k: usize,
        (a, rsa, csa): (*const f32, usize, usize),
        b: *const f32,
        ldb: usize,
        masks: [__mmask16; NC / 16],
        (alpha, beta): (f32, f32),
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..k {
            let mut bv = [_mm512_setzero_ps(); V];
            for v in 0..V {
                // SAFETY: lanes of the run of row p past nc are masked off.
                bv[v] = unsafe { _mm512_maskz_loadu_ps(masks[v], b.add(p * ldb + 16 * v)) };
            }
            for r in 0..R {
                // SAFETY: element (r, p) of `a` lies inside it.
                let x = _mm512_set1_ps(unsafe { *a.add(r * rsa + p * csa) });
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
                }
            }
        }
        let (alpha_v, beta_v) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
        for r in 0..R {
            for v in 0..V {
                // Row r's vector v of `c`: inside the caller's run of nc floats where unmasked.
                let out = c.wrapping_add(r * ldc + 16 * v);
                let mut y = _mm512_mul_ps(alpha_v, acc[r][v]);
                if beta != 0.0 {
                    // SAFETY: lanes past nc are masked off; the others lie in row r's run.
                    let old = unsafe { _mm512_maskz_loadu_ps(masks[v], out) };
                    y = _mm512_add_ps(y, _mm512_mul_ps(beta_v, old));
                }
                // SAFETY: as for the load; nothing else touches the run during the call.
                unsafe { _mm512_mask_storeu_ps(out, masks[v], y) };
            }
        }
    }

    /// Rows of `C` per AVX2 register tile: 6 rows by 2 vectors is 12 accumulators, with the
    /// 2 vectors of `B` and a broadcast, 15 of the 16 registers.
    pub(super) const MR256: usize = 6;
    /// Columns of `C` per AVX2 register tile (two 8-lane vectors): a 48-column panel of `B`
    /// is read by three of them in turn.
    pub(super) const NC256: usize = 16;
    const _: () = assert!(NC.is_multiple_of(NC256));

    /// The AVX2 + FMA tile: rows `0..mr` and columns `0..nc` of `C = alpha·A·B + beta·C`,
    /// the same chains of fused multiply-adds and the same epilogue as
    /// [`avx512_tile`]; a last vector past `nc` is loaded and stored masked.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a.0` holds the `mr×k` elements at `r·a.1 + p·a.2`, `b` the
    /// `k` runs of `nc` floats `ldb` apart, and `c` the `mr` runs of `nc` floats `ldc` apart,
    /// which nothing else reads or writes during the call; `1 ≤ mr ≤ MR256`, `nc ≤ NC256`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx2_tile(
        mr: usize,
        nc: usize,
        k: usize,
        a: (*const f32, usize, usize),
        b: *const f32,
        ldb: usize,
        scale: (f32, f32),
        c: *mut f32,
        ldc: usize,
    ) {
        // Lanes of the last vector inside the run (all 8 when `nc` is a multiple of 8).
        let last = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(((nc - 1) % 8 + 1) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // One instantiation per row count, vector count and whether the last vector is
        // partial, whose loops the compiler unrolls into registers.
        macro_rules! rows {
            ($v:literal, $partial:literal) => {
                // SAFETY (every arm): the caller's contract, with `R = mr`, `V` vectors
                // covering `nc` and the last one masked when `nc` ends inside it.
                unsafe {
                    match mr {
                        6 => avx2_rows::<6, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                        5 => avx2_rows::<5, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                        4 => avx2_rows::<4, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                        3 => avx2_rows::<3, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                        2 => avx2_rows::<2, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                        _ => avx2_rows::<1, $v, $partial>(k, a, b, ldb, last, scale, c, ldc),
                    }
                }
            };
        }
        match (nc > 8, !nc.is_multiple_of(8)) {
            (true, false) => rows!(2, false),
            (true, true) => rows!(2, true),
            (false, false) => rows!(1, false),
            (false, true) => rows!(1, true),
        }
    }

    /// [`avx2_tile`] for `R` rows and `V` vectors of columns, the last one loaded and stored
    /// through `last` when `PARTIAL`.
    ///
    /// # Safety
    /// As for [`avx2_tile`] with `mr = R` and `nc` covered by `V` vectors: all `V` full, or
    /// the last one's lanes past `nc` off in `last`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2_rows<const R: usize, const V: usize, const PARTIAL: bool>(
        k: usize,
        (a, rsa, csa): (*const f32, usize, usize),
        b: *const f32,
        ldb: usize,
        last: __m256i,
        (alpha, beta): (f32, f32),
        c: *mut f32,
        ldc: usize,
    ) {
        let masked = |v: usize| PARTIAL && v == V - 1;
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for p in 0..k {
            let mut bv = [_mm256_setzero_ps(); V];
            for v in 0..V {
                let src = b.wrapping_add(p * ldb + 8 * v);
                // SAFETY: row p's run holds the vector's lanes, all of them unless masked,
                // and then the lanes `last` leaves on.
                bv[v] = unsafe {
                    if masked(v) {
                        _mm256_maskload_ps(src, last)
                    } else {
                        _mm256_loadu_ps(src)
                    }
                };
            }
            for r in 0..R {
                // SAFETY: element (r, p) of `a` lies inside it.
                let x = _mm256_set1_ps(unsafe { *a.add(r * rsa + p * csa) });
                for v in 0..V {
                    acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
                }
            }
        }
        let (alpha_v, beta_v) = (_mm256_set1_ps(alpha), _mm256_set1_ps(beta));
        for r in 0..R {
            for v in 0..V {
                // Row r's vector v of `c`: inside the caller's run of nc floats where unmasked.
                let out = c.wrapping_add(r * ldc + 8 * v);
                let mut y = _mm256_mul_ps(alpha_v, acc[r][v]);
                // SAFETY (both blocks): as for the loads of `b`, in row r's run of `c`, which
                // nothing else touches during the call.
                if beta != 0.0 {
                    let old = unsafe {
                        if masked(v) {
                            _mm256_maskload_ps(out, last)
                        } else {
                            _mm256_loadu_ps(out)
                        }
                    };
                    y = _mm256_add_ps(y, _mm256_mul_ps(beta_v, old));
                }
                unsafe {
                    if masked(v) {
                        _mm256_maskstore_ps(out, last, y)
                    } else {
                        _mm256_storeu_ps(out, y)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// Every path on random shapes (tile edges, partial vectors, k = 0), `A` read by rows or
    /// by columns, leading dimensions past the row length: the same bits on every path this
    /// CPU has, and within rounding of an f64 loop.
    #[test]
    fn every_path_gives_the_same_bits_and_the_right_product() {
        let mut rng = StdRng::seed_from_u64(5);
        for case in 0..if cfg!(miri) { 4 } else { 300 } {
            let (m, n, k) = (rng.random_range(1..20), rng.random_range(1..120), rng.random_range(0..40));
            // A stored [m, k] (rows) or [k, m] (a transposed view).
            let (rsa, csa) = if case % 2 == 0 { (k.max(1), 1) } else { (1, m) };
            let ldb = n + rng.random_range(0..4);
            let a: Vec<f32> = (0..m * k.max(1)).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * ldb).map(|_| rng.random_range(-1.0..1.0)).collect();
            // Scales that round (0.3, 1.7) tell a fused epilogue from `write_scaled`'s.
            let beta = [0.0, 1.0, -0.5, 0.3][case % 4];
            let alpha = [2.0, 1.7][case % 5 / 3];
            let c0: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut first: Option<Vec<u32>> = None;
            for path in Path::available() {
                let mut c = c0.clone();
                axpy_nn_on(path, m, n, k, alpha, (&a, rsa, csa), &b, ldb, beta, &mut c, n);
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 =
                            (0..k).map(|p| a[i * rsa + p * csa] as f64 * b[p * ldb + j] as f64).sum();
                        let want = alpha as f64 * dot
                            + if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * n + j] as f64 };
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + k as f64),
                            "{path:?} {m}x{k}x{n}: {got} vs {want}"
                        );
                    }
                }
                let bits: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                match &first {
                    None => first = Some(bits),
                    Some(f) => assert_eq!(f, &bits, "{path:?} differs from the portable path at {m}x{k}x{n}"),
                }
            }
            let mut c = c0.clone();
            axpy_nn(m, n, k, alpha, (&a, rsa, csa), &b, ldb, beta, &mut c, n);
            assert_eq!(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), first.unwrap());
        }
    }

    #[test]
    fn matrices_past_their_slices_are_refused() {
        let (a, b) = (vec![1f32; 8], vec![1f32; 8]);
        let mut c = vec![0f32; 4];
        for (m, n, k, rsa, csa, ldb) in
            [(3, 2, 4, 4, 1, 2), (2, 2, 5, 4, 1, 2), (2, 2, 4, usize::MAX, 1, 2), (2, 3, 4, 4, 1, 2)]
        {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                axpy_nn(m, n, k, 1.0, (&a, rsa, csa), &b, ldb, 0.0, &mut c, 2)
            }));
            assert!(r.is_err(), "{m}x{k}x{n}");
        }
        axpy_nn(2, 2, 4, 1.0, (&a, 4, 1), &b, 2, 0.0, &mut c, 2);
        assert_eq!(c, vec![4.0; 4]);
    }
}
