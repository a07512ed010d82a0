//! A product kernel of our own for `C = alpha·A·Bᵀ + beta·C` in `f32` when both `A`'s rows
//! and `B`'s rows are contiguous: a layer's forward `x·Wᵀ` with `W` stored `[out, in]`,
//! where every element of `C` is the dot product of two contiguous runs. No packing: a
//! register tile of `MR` rows of `A` by `NR` rows of `B` reads each run once per tile,
//! straight from where it lies (llamafile's tinyBLAS works this way).
//!
//! Every path computes every element the same way, so the bits do not depend on the CPU,
//! the path or the tiling: sixteen lanes, lane `l` accumulating `A[i, p]·B[j, p]` with a
//! fused multiply-add over `p ≡ l (mod 16)` in increasing `p` (from +0, so a lane is never
//! −0 and the zero padding of the last, partial chunk adds exactly nothing), then the lanes
//! summed as the tree `((l + l⁸) + (l + l⁸)⁴)…` (halves added, then halves of that), then
//! [`write_scaled`]. The portable path is the reference (and what
//! Miri runs); AVX-512F and AVX2 + FMA are chosen at run time.
//!
//! Part of the `matmul` module, which holds the crate's `unsafe`: the SIMD paths read
//! through raw pointers inside the bounds [`dot_nt`] checks first.

use super::write_scaled;
use crate::simd::Path;

/// Lanes of one accumulator: the summation order every path follows.
const LANES: usize = 16;

/// `C = alpha·A·Bᵀ + beta·C` for `A` `m×k` (row `i` at `a[i·lda..][..k]`), `B` `n×k` (row
/// `j` at `b[j·ldb..][..k]`) and `C` `m×n` (row `i` at `c[i·ldc..][..n]`); `C` is not read
/// when `beta` is 0. Panics, before touching memory, if a matrix reaches past its slice.
#[allow(clippy::too_many_arguments)]
pub fn dot_nt(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    dot_nt_on(Path::detect(), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// [`dot_nt`] on the given path.
#[allow(clippy::too_many_arguments)]
fn dot_nt_on(
    path: Path,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let fits = |rows: usize, ld: usize, cols: usize, len: usize| {
        cols == 0
            || (rows - 1).checked_mul(ld).and_then(|r| r.checked_add(cols)).is_some_and(|end| end <= len)
    };
    assert!(
        fits(m, lda, k, a.len()) && fits(n, ldb, k, b.len()) && fits(m, ldc, n, c.len()),
        "dot_nt: a {m}x{k} (ld {lda}), b {n}x{k} (ld {ldb}) or c {m}x{n} (ld {ldc}) reaches past its slice"
    );
    // A block of A's rows stays in L1 while every tile of B's rows passes it, so B is read
    // from farther once per block rather than once per tile of A.
    let block = (L1_FLOATS / k.max(1)).max(MR) / MR * MR;
    let mut sums = [[0f32; NR]; MR];
    for ib in (0..m).step_by(block) {
        for j0 in (0..n).step_by(NR) {
            let nr = NR.min(n - j0);
            for i0 in (ib..m.min(ib + block)).step_by(MR) {
                let mr = MR.min(m - i0);
                // With k = 0 the slices may end before these starts; nothing is read then.
                let a0 = a.get(i0 * lda..).unwrap_or(&[]);
                let b0 = b.get(j0 * ldb..).unwrap_or(&[]);
                path.dot_tile(mr, nr, k, a0, lda, b0, ldb, &mut sums);
                for (r, row) in sums.iter().enumerate().take(mr) {
                    write_scaled(&mut c[(i0 + r) * ldc + j0..][..nr], row, alpha, beta);
                }
            }
        }
    }
}

/// Floats of `A` kept in L1 while `B` streams past: half of a 32 KiB L1 data cache, the
/// rest left to the tile of `B` and to `C`.
const L1_FLOATS: usize = 4096;

/// Rows of `A` per register tile.
const MR: usize = 4;
/// Rows of `B` per register tile (`MR·NR` = 16 accumulators, which the AVX-512 path
/// reduces together).
const NR: usize = 4;

impl Path {
    /// `sums[r][s] = Σ_p a[r·lda + p]·b[s·ldb + p]` over `p < k`, for `r < mr`, `s < nr`,
    /// in the lane order of the module's doc. The caller has checked that every row read
    /// lies inside its slice.
    #[allow(clippy::too_many_arguments)]
    fn dot_tile(
        self,
        mr: usize,
        nr: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        sums: &mut [[f32; NR]; MR],
    ) {
        debug_assert!(
            mr <= MR
                && nr <= NR
                && (k == 0 || ((mr - 1) * lda + k <= a.len() && (nr - 1) * ldb + k <= b.len()))
        );
        match self {
            Path::Portable => portable_tile(mr, nr, k, a, lda, b, ldb, sums),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` chose this path only on a CPU with AVX2 and FMA, and every
            // row the tile reads (`mr` rows of `k` from `a`, `nr` rows of `k` from `b`) lies
            // inside its slice (checked by `dot_nt`, asserted above).
            Path::Avx2 => unsafe { x86::avx2_tile(mr, nr, k, a.as_ptr(), lda, b.as_ptr(), ldb, sums) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, on a CPU with AVX-512F.
            Path::Avx512 => unsafe { x86::avx512_tile(mr, nr, k, a.as_ptr(), lda, b.as_ptr(), ldb, sums) },
        }
    }
}

/// The lanes of one accumulator summed in the module's tree order.
#[inline(always)]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let mut r8 = [0f32; 8];
    for l in 0..8 {
        r8[l] = acc[l] + acc[l + 8];
    }
    let r4 = [r8[0] + r8[4], r8[1] + r8[5], r8[2] + r8[6], r8[3] + r8[7]];
    let r2 = [r4[0] + r4[2], r4[1] + r4[3]];
    r2[0] + r2[1]
}

/// The reference path: plain loops in the lane order (`mul_add` is the fused operation).
#[allow(clippy::too_many_arguments)]
fn portable_tile(
    mr: usize,
    nr: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    sums: &mut [[f32; NR]; MR],
) {
    for r in 0..mr {
        let ar = &a[r * lda..][..k];
        for s in 0..nr {
            let br = &b[s * ldb..][..k];
            let mut acc = [0f32; LANES];
            for (p, (&x, &y)) in ar.iter().zip(br).enumerate() {
                acc[p % LANES] = x.mul_add(y, acc[p % LANES]);
            }
            sums[r][s] = reduce(&acc);
        }
    }
}

// The loops index the register tile by row and column, as the tile is drawn.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{LANES, MR, NR};

    // The AVX-512 tile is dispatched by row count up to 4 and reduces 4×4 accumulators.
    const _: () = assert!(MR == 4 && NR == 4);

    /// `B`'s `NR` row starts for a tile of `nr ≥ 1` rows: rows past `nr` repeat the last
    /// one, so every tile computes `NR` columns (the caller writes only `nr` of them) and
    /// each row count of `A` needs one instantiation, whose loops the compiler unrolls into
    /// registers.
    ///
    /// # Safety
    /// `b` holds `nr` rows `ldb` apart.
    unsafe fn b_rows(nr: usize, b: *const f32, ldb: usize) -> [*const f32; NR] {
        debug_assert!(nr >= 1);
        let mut rows = [b; NR];
        for (s, row) in rows.iter_mut().enumerate() {
            // SAFETY: min(s, nr − 1) < nr, a row `b` holds.
            *row = unsafe { b.add(s.min(nr - 1) * ldb) };
        }
        rows
    }

    /// The sixteen sums of a 4×4 tile's accumulators (`acc[r][s]`, rows past `R` zero),
    /// each in the module's tree order, reduced together: at each level of the tree, two
    /// registers' halves are gathered by a shuffle and added, so one add does a level for
    /// several accumulators. Lane `4s + r` of the result is `acc[r][s]`'s sum.
    #[target_feature(enable = "avx512f")]
    fn reduce16<const R: usize>(acc: &[[__m512; NR]; R]) -> [f32; 16] {
        let mut v = [_mm512_setzero_ps(); 16];
        for r in 0..R {
            for s in 0..NR {
                v[4 * r + s] = acc[r][s];
            }
        }
        // Lane l plus lane l + 8: 128-bit blocks 0, 1 plus blocks 2, 3, two accumulators
        // a register.
        let mut z = [_mm512_setzero_ps(); 8];
        for i in 0..8 {
            let (x, y) = (v[2 * i], v[2 * i + 1]);
            z[i] = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(x, y), _mm512_shuffle_f32x4::<0xEE>(x, y));
        }
        // Block 0 plus block 1 of each half: four accumulators a register, one a block.
        let mut u = [_mm512_setzero_ps(); 4];
        for j in 0..4 {
            let (x, y) = (z[2 * j], z[2 * j + 1]);
            u[j] = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(x, y), _mm512_shuffle_f32x4::<0xDD>(x, y));
        }
        // Within each block, lanes 0, 1 plus lanes 2, 3, then lane 0 plus lane 1.
        let mut t = [_mm512_setzero_ps(); 2];
        for q in 0..2 {
            let (x, y) = (u[2 * q], u[2 * q + 1]);
            t[q] = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(x, y), _mm512_shuffle_ps::<0xEE>(x, y));
        }
        let f = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(t[0], t[1]), _mm512_shuffle_ps::<0xDD>(t[0], t[1]));
        let mut out = [0f32; 16];
        // SAFETY: `out` holds the 16 floats the store writes.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), f) };
        out
    }

    /// The eight lanes `r8` summed as `(r8[0..4] + r8[4..8])`, then its halves, then the
    /// last pair: the tail of the module's tree order.
    #[target_feature(enable = "avx2")]
    fn reduce256(r8: __m256) -> f32 {
        let r4 = _mm_add_ps(_mm256_castps256_ps128(r8), _mm256_extractf128_ps::<1>(r8));
        let r2 = _mm_add_ps(r4, _mm_movehl_ps(r4, r4));
        _mm_cvtss_f32(_mm_add_ss(r2, _mm_shuffle_ps::<1>(r2, r2)))
    }

    /// The AVX-512F tile: one 16-lane register per element of the tile, whole chunks of
    /// sixteen loaded plainly and the last, partial one masked (the lanes past `k` read as
    /// 0, touching no memory).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a` holds `mr` rows of `k` floats `lda` apart and `b` holds
    /// `nr` rows of `k` floats `ldb` apart; `1 ≤ mr ≤ MR`, `1 ≤ nr ≤ NR`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx512_tile(
        mr: usize,
        nr: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        sums: &mut [[f32; NR]; MR],
    ) {
        // SAFETY (all four): the caller's contract, with `R = mr`.
        unsafe {
            let bs = b_rows(nr, b, ldb);
            match mr {
                4 => avx512_rows::<4>(k, a, lda, bs, sums),
                3 => avx512_rows::<3>(k, a, lda, bs, sums),
                2 => avx512_rows::<2>(k, a, lda, bs, sums),
                _ => avx512_rows::<1>(k, a, lda, bs, sums),
            }
        }
    }

    /// [`avx512_tile`] for `R` rows of `A` (the first `R` rows of `sums`).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a` holds `R` rows of `k` floats `lda` apart, each of `bs`
    /// a row of `k` floats.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn avx512_rows<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bs: [*const f32; NR],
        sums: &mut [[f32; NR]; MR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); NR]; R];
        let mut step = |p: usize, mask: __mmask16| {
            let mut av = [_mm512_setzero_ps(); R];
            for r in 0..R {
                // SAFETY: row r of `a` holds k floats and lanes at p + l ≥ k are masked off.
                av[r] = unsafe { _mm512_maskz_loadu_ps(mask, a.add(r * lda + p)) };
            }
            for s in 0..NR {
                // SAFETY: as for `a`.
                let bv = unsafe { _mm512_maskz_loadu_ps(mask, bs[s].add(p)) };
                for r in 0..R {
                    acc[r][s] = _mm512_fmadd_ps(av[r], bv, acc[r][s]);
                }
            }
        };
        let whole = k - k % LANES;
        let mut p = 0;
        while p < whole {
            step(p, 0xffff);
            p += LANES;
        }
        if p < k {
            step(p, (1u16 << (k - p)) - 1);
        }
        let sum = reduce16(&acc);
        for r in 0..R {
            for s in 0..NR {
                sums[r][s] = sum[4 * s + r];
            }
        }
    }

    /// The AVX2 + FMA tile: each element's 16 lanes as two 8-lane registers (lanes 0–7 and
    /// 8–15). Two rows of `A` against the tile's four of `B` take one pass over `k` for each
    /// half of the lanes: 8 accumulators, and 6 loads for 8 multiply-adds, where both halves
    /// at once would need 16 accumulators (all 16 registers) and one row at a time 10 loads
    /// for 8. The last, partial chunk is loaded masked.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a`, `b`, `mr` and `nr` as for [`avx512_tile`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx2_tile(
        mr: usize,
        nr: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        sums: &mut [[f32; NR]; MR],
    ) {
        // SAFETY: the caller's contract: `b` holds `nr` rows, `a` holds rows r < mr.
        unsafe {
            let bs = b_rows(nr, b, ldb);
            let mut r = 0;
            while r + 2 <= mr {
                avx2_rows::<2>(k, a.add(r * lda), lda, bs, &mut sums[r..r + 2]);
                r += 2;
            }
            if r < mr {
                avx2_rows::<1>(k, a.add(r * lda), lda, bs, &mut sums[r..r + 1]);
            }
        }
    }

    /// [`avx2_tile`] for `R` rows of `A` (`sums` holds their `R` rows of sums).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a` holds `R` rows of `k` floats `lda` apart, each of `bs`
    /// a row of `k` floats.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn avx2_rows<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bs: [*const f32; NR],
        sums: &mut [[f32; NR]],
    ) {
        // Lane l of a half is loaded when l < left, the floats left from its start.
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let whole = k - k % LANES;
        let mut halves = [[[_mm256_setzero_ps(); NR]; R]; 2];
        for (h, half) in halves.iter_mut().enumerate() {
            let mut acc = [[_mm256_setzero_ps(); NR]; R];
            let mut step = |p: usize, left: i32| {
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
                let mut av = [_mm256_setzero_ps(); R];
                for r in 0..R {
                    // SAFETY: row r of `a` holds k floats; lanes at or past k are masked off
                    // and read nothing.
                    av[r] = unsafe { _mm256_maskload_ps(a.add(r * lda + p), mask) };
                }
                for s in 0..NR {
                    // SAFETY: as for `a`.
                    let bv = unsafe { _mm256_maskload_ps(bs[s].add(p), mask) };
                    for r in 0..R {
                        acc[r][s] = _mm256_fmadd_ps(av[r], bv, acc[r][s]);
                    }
                }
            };
            let mut p = 8 * h;
            while p < whole {
                step(p, 8);
                p += LANES;
            }
            if p < k {
                step(p, (k - p) as i32);
            }
            *half = acc;
        }
        for r in 0..R {
            for s in 0..NR {
                sums[r][s] = reduce256(_mm256_add_ps(halves[0][r][s], halves[1][r][s]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// The product by its definition, in f64 (the tolerance reference).
    fn direct(m: usize, n: usize, k: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * lda + p] as f64 * b[j * ldb + p] as f64).sum();
            }
        }
        c
    }

    /// Every path on random shapes (tile edges, partial chunks, k = 0), leading dimensions
    /// past the row length and offsets into the slices: the same bits on every path this CPU
    /// has, and within rounding of the definition.
    #[test]
    fn every_path_gives_the_same_bits_and_the_right_product() {
        let mut rng = StdRng::seed_from_u64(3);
        let paths = Path::available();
        for case in 0..if cfg!(miri) { 4 } else { 300 } {
            let (m, n, k) = (rng.random_range(1..11), rng.random_range(1..9), rng.random_range(0..70));
            let (lda, ldb) = (k + rng.random_range(0..3), k + rng.random_range(0..5));
            let (oa, ob) = (rng.random_range(0..3), rng.random_range(0..3));
            let a: Vec<f32> = (0..oa + m * lda).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..ob + n * ldb).map(|_| rng.random_range(-1.0..1.0)).collect();
            let beta = [0.0, 1.0, -0.5][case % 3];
            let c0: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let want = direct(m, n, k, &a[oa..], lda, &b[ob..], ldb);
            let mut first: Option<Vec<u32>> = None;
            for &path in &paths {
                let mut c = c0.clone();
                dot_nt_on(path, m, n, k, 2.0, &a[oa..], lda, &b[ob..], ldb, beta, &mut c, n);
                let bits: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                match &first {
                    None => first = Some(bits),
                    Some(f) => assert_eq!(f, &bits, "{path:?} differs from the portable path at {m}x{n}x{k}"),
                }
                for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                    let w = 2.0 * w + if beta == 0.0 { 0.0 } else { beta as f64 * c0[idx] as f64 };
                    assert!(
                        (got as f64 - w).abs() <= 1e-5 * (1.0 + k as f64),
                        "{path:?} {m}x{n}x{k}: {got} vs {w}"
                    );
                }
            }
            // The entry point takes one of them.
            let mut c = c0.clone();
            dot_nt(m, n, k, 2.0, &a[oa..], lda, &b[ob..], ldb, beta, &mut c, n);
            assert_eq!(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), first.unwrap());
        }
    }

    #[test]
    fn matrices_past_their_slices_are_refused() {
        let (a, b) = (vec![1f32; 10], vec![1f32; 10]);
        let mut c = vec![0f32; 4];
        for (m, n, k, lda, ldb) in
            [(3, 1, 4, 4, 4), (1, 3, 4, 4, 4), (2, 2, 4, usize::MAX, 4), (1, 1, 11, 11, 11)]
        {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                dot_nt(m, n, k, 1.0, &a, lda, &b, ldb, 0.0, &mut c, 2)
            }));
            assert!(r.is_err(), "{m}x{n}x{k}");
        }
        dot_nt(2, 2, 5, 1.0, &a, 5, &b, 5, 0.0, &mut c, 2);
        assert_eq!(c, vec![5.0; 4]);
    }
}
