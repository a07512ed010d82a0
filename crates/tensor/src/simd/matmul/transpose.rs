//! Row-major copies of column-major operands. A layer's forward `x·Wᵀ`, with `W` stored
//! `[out, in]`, reads `Wᵀ` down its columns; above the dot kernel's row count the axpy
//! kernel, which reads the right operand by rows, takes it from a row-major copy (and
//! matrixmultiply, where it takes the product, packs the copy from contiguous runs, where it
//! would pack `Wᵀ` one element at a time). The copy, made 8×8 blocks at a time in
//! registers, costs a fraction of the product (`docs/performance.md`). A copy moves values
//! only, so a product through it has the bits of the product on the strided operand.
//!
//! Part of the `matmul` module, which holds the crate's `unsafe`: the AVX2 path reads and
//! writes through raw pointers inside the bounds [`rows_from_columns`] checks first.

use crate::simd::Path;

/// `dst[i·n + j] = src[j·ld + i]` for `i < k`, `j < n`: the row-major `k×n` matrix whose
/// column `j` is the `k` contiguous elements at `src[j·ld..]`, on the portable path (the
/// `f64` products' copy). Panics, before touching memory, if `src` holds fewer than `n` such
/// runs or `dst` fewer than `k·n` elements.
pub fn rows_from_columns<T: Copy>(src: &[T], ld: usize, k: usize, n: usize, dst: &mut [T]) {
    if check(src.len(), ld, k, n, dst.len()) {
        portable(src, ld, k, n, dst);
    }
}

/// [`rows_from_columns`] for `f32`, on the widest path this CPU runs.
pub fn rows_from_columns_f32(src: &[f32], ld: usize, k: usize, n: usize, dst: &mut [f32]) {
    rows_from_columns_on(Path::detect(), src, ld, k, n, dst)
}

/// Whether there is anything to copy; panics if `n` runs of `k` elements `ld` apart reach
/// past `src_len` elements or `dst_len` holds fewer than `k·n` (checked without wrapping).
#[track_caller]
fn check(src_len: usize, ld: usize, k: usize, n: usize, dst_len: usize) -> bool {
    if k == 0 || n == 0 {
        return false;
    }
    let src_fits = (n - 1).checked_mul(ld).and_then(|r| r.checked_add(k)).is_some_and(|end| end <= src_len);
    let dst_fits = k.checked_mul(n).is_some_and(|len| len <= dst_len);
    assert!(
        src_fits && dst_fits,
        "rows_from_columns: {n} runs of {k} (ld {ld}) from {src_len} elements into {dst_len}"
    );
    true
}

/// [`rows_from_columns_f32`] on the given path.
fn rows_from_columns_on(path: Path, src: &[f32], ld: usize, k: usize, n: usize, dst: &mut [f32]) {
    if !check(src.len(), ld, k, n, dst.len()) {
        return;
    }
    match path {
        Path::Portable => portable(src, ld, k, n, dst),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` chose a path above the portable one only on a CPU with AVX2 (the
        // AVX-512 path requires it too), and `check` proved that every run read and every
        // row written lies inside its slice.
        Path::Avx2 | Path::Avx512 => unsafe { x86::copy(src.as_ptr(), ld, k, n, dst.as_mut_ptr()) },
    }
}

/// The reference path: 16 output rows at a time, so each source run is read in 16-element
/// pieces while those rows' cache lines stay in L1.
fn portable<T: Copy>(src: &[T], ld: usize, k: usize, n: usize, dst: &mut [T]) {
    for i0 in (0..k).step_by(16) {
        let rows = 16.min(k - i0);
        for j in 0..n {
            for (i, &x) in src[j * ld + i0..][..rows].iter().enumerate() {
                dst[(i0 + i) * n + j] = x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Columns of the output per sweep: the source runs one sweep reads (4 of them, 8
    /// elements at a time) stay in L1 while its 8×8 blocks are copied down the output.
    const SWEEP: usize = 32;

    /// `dst[i·n + j] = src[j·ld + i]` for `i < k`, `j < n`: full 8×8 blocks in registers,
    /// `SWEEP` output columns at a time, and the edges (the last `k mod 8` rows and `n mod
    /// 8` columns) element by element.
    ///
    /// # Safety
    /// The CPU has AVX2; `src` holds `n` runs of `k` elements `ld` apart and `dst` holds
    /// `k·n` elements.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn copy(src: *const f32, ld: usize, k: usize, n: usize, dst: *mut f32) {
        let (k8, n8) = (k / 8 * 8, n / 8 * 8);
        for j0 in (0..n8).step_by(SWEEP) {
            for i in (0..k8).step_by(8) {
                for j in (j0..n8.min(j0 + SWEEP)).step_by(8) {
                    // SAFETY: i + 8 ≤ k and j + 8 ≤ n: the block's 8 runs (rows j..j + 8 of
                    // `src`, elements i..i + 8 of each) and 8 output rows (i..i + 8, columns
                    // j..j + 8) lie inside what the caller vouches for.
                    unsafe { block(src.add(j * ld + i), ld, dst.add(i * n + j), n) };
                }
            }
        }
        for j in 0..n {
            let i_from = if j < n8 { k8 } else { 0 };
            for i in i_from..k {
                // SAFETY: i < k and j < n.
                unsafe { *dst.add(i * n + j) = *src.add(j * ld + i) };
            }
        }
    }

    /// One 8×8 block: eight loads of 8 from `src` (`lds` apart), transposed by unpacks and
    /// shuffles, eight stores of 8 to `dst` (`ldd` apart).
    ///
    /// # Safety
    /// The CPU has AVX2; the 8 runs of 8 at `src + q·lds` and at `dst + q·ldd`, `q < 8`, are
    /// readable and writable respectively.
    #[target_feature(enable = "avx2")]
    unsafe fn block(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        // SAFETY: run q < 8 of the source is readable (the caller's contract).
        let r: [__m256; 8] = std::array::from_fn(|q| unsafe { _mm256_loadu_ps(src.add(q * lds)) });
        // Pairs of rows interleaved, then pairs of pairs: lane l of t/s holds the 2×2 and
        // 4×4 sub-blocks in the order the 128-bit halves' exchange below completes.
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for q in 0..4 {
            let (low, high) = (
                _mm256_permute2f128_ps::<0x20>(s[q], s[q + 4]),
                _mm256_permute2f128_ps::<0x31>(s[q], s[q + 4]),
            );
            // SAFETY: output rows q and q + 4 (< 8) are writable (the caller's contract).
            unsafe {
                _mm256_storeu_ps(dst.add(q * ldd), low);
                _mm256_storeu_ps(dst.add((q + 4) * ldd), high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path against the definition, on shapes around the 8×8 blocks and the sweep,
    /// with source rows longer than the runs and extra room after both buffers.
    #[test]
    fn every_path_copies_every_element() {
        let shapes: &[(usize, usize)] = if cfg!(miri) {
            &[(1, 1), (9, 3), (8, 17)]
        } else {
            &[(1, 1), (7, 9), (8, 8), (16, 33), (31, 40), (200, 37)]
        };
        for &(k, n) in shapes {
            for pad in [0, 5] {
                let ld = k + pad;
                let src: Vec<f32> = (0..n * ld + 3).map(|x| x as f32).collect();
                for path in Path::available() {
                    let mut dst = vec![-1.0f32; k * n + 2];
                    rows_from_columns_on(path, &src, ld, k, n, &mut dst);
                    for i in 0..k {
                        for j in 0..n {
                            assert_eq!(
                                dst[i * n + j],
                                src[j * ld + i],
                                "{path:?} {k}x{n} ld {ld} at ({i}, {j})"
                            );
                        }
                    }
                    assert_eq!(&dst[k * n..], &[-1.0, -1.0], "{path:?} {k}x{n}: wrote past the matrix");
                }
                let mut wide = vec![0f64; k * n];
                let src64: Vec<f64> = src.iter().map(|&x| f64::from(x)).collect();
                rows_from_columns(&src64, ld, k, n, &mut wide);
                assert!((0..k * n).all(|e| wide[e] == src64[(e % n) * ld + e / n]));
            }
        }
    }

    #[test]
    #[should_panic(expected = "rows_from_columns")]
    fn a_short_source_panics_before_reading() {
        let mut dst = vec![0f32; 12];
        rows_from_columns_f32(&[0.0; 10], 4, 3, 4, &mut dst);
    }
}
