//! Matrix products through `matrixmultiply`: 2-D and batched (leading batch axes that
//! broadcast), any operand strides passed straight to the GEMM, an accumulate form
//! `C = alpha·A·B + beta·C`, and rayon over disjoint blocks of `C` (rows or columns) with
//! each block one single-threaded GEMM call. Small-batch products go to kernels of our own
//! instead: a layer's forward `x·Wᵀ` to [`dot`], its input gradient `G·W` and its weight
//! gradient `Gᵀ·X` to [`axpy`], each with a tile per [`Path`]; with AVX-512 the axpy
//! kernel also takes many-row products where it gives matrixmultiply's bits
//! ([`same_bits_as_library`]), so the choice never shows in a result. The one operand ever copied
//! is a column-major right operand (a layer's `Wᵀ`) that no kernel of our own reads in
//! place, of a product of at most 128 rows (a forward above 32 rows) or of at least 512
//! (the k = 5000 evaluation's), which [`transpose`] lays out in rows for the kernel that
//! takes the product: the axpy kernel, or matrixmultiply's packing.

mod axpy;
mod dot;
mod transpose;

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use smallvec::SmallVec;

use super::Path;
use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::layout::{broadcast_shapes, Dims, Layout};
use crate::tensor::Tensor;

/// Below this many multiply-adds (`m·k·n`) a product is not split into blocks of rows (or,
/// for matrixmultiply, of the output's longer side). Each row block of a few-row product
/// reads the whole weight again, which costs more than a second thread saves on Burda et
/// al.'s batch-20 layers (20×784×200, 3.1 M); those split by columns instead, from
/// [`OWN_SPLIT_MIN_MACS`].
pub const PAR_MIN_MACS: usize = 1 << 22;
/// From this many multiply-adds up to [`PAR_MIN_MACS`], a product that a kernel of our own
/// takes (at most 32 rows) is split into blocks of columns, one per thread: each block reads
/// its own part of the weight, so a second thread pays on Burda et al.'s batch-20 layers
/// (`docs/performance.md`).
pub const OWN_SPLIT_MIN_MACS: usize = 1 << 20;
/// Parallel blocks of `C` start at multiples of this many rows (or columns), and are at
/// least this large. It is a multiple of every micro-kernel tile side matrixmultiply has
/// (4, 8 or 16), so the tiles of a block are exactly the tiles the unsplit product would
/// use; see [`gemm`].
const BLOCK_ALIGN: usize = 16;

static GEMM_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has called matrixmultiply's GEMM (every thread, every
/// block of a split product). matrixmultiply allocates its packing buffer on each call, so
/// this is also the number of heap allocations the products make; tests of a step's heap
/// use subtract it.
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn gemm_calls() -> u64 {
    GEMM_CALLS.load(Ordering::Relaxed)
}

/// A strided 2-D operand: its storage, offset and row/column strides.
#[derive(Clone, Copy)]
struct Operand<'a, T> {
    data: &'a [T],
    offset: usize,
    rs: usize,
    cs: usize,
}

impl<T> Operand<'_, T> {
    /// The strides as `isize`, after checking with checked arithmetic that the last element
    /// an `rows×cols` matrix reaches lies inside `data` (then every index fits `isize`, as
    /// a slice's length does). Panics, naming `side`, otherwise.
    #[track_caller]
    fn checked_strides(&self, side: &str, rows: usize, cols: usize) -> (isize, isize) {
        let last = (rows - 1)
            .checked_mul(self.rs)
            .zip((cols - 1).checked_mul(self.cs))
            .and_then(|(r, c)| self.offset.checked_add(r)?.checked_add(c));
        let fits = |s: usize| isize::try_from(s).ok();
        match (last, fits(self.rs), fits(self.cs)) {
            (Some(last), Some(rs), Some(cs)) if last < self.data.len() => (rs, cs),
            _ => panic!(
                "gemm: {side} {rows}x{cols} at offset {} with strides ({}, {}) reaches past its {} elements",
                self.offset,
                self.rs,
                self.cs,
                self.data.len()
            ),
        }
    }

    /// The operand moved down by `rows` rows.
    fn down(self, rows: usize) -> Self {
        Operand { offset: self.offset + rows * self.rs, ..self }
    }

    /// The operand moved right by `cols` columns.
    fn right(self, cols: usize) -> Self {
        Operand { offset: self.offset + cols * self.cs, ..self }
    }
}

impl<'a, T> From<(&'a [T], usize, usize)> for Operand<'a, T> {
    /// A slice with its row and column strides, from its start.
    fn from((data, rs, cs): (&'a [T], usize, usize)) -> Self {
        Operand { data, offset: 0, rs, cs }
    }
}

/// Where a GEMM writes: the first element of its `m×n` block and the row stride.
#[derive(Clone, Copy)]
struct Out<T> {
    ptr: *mut T,
    rs: usize,
}

// SAFETY: an `Out` is only shared between the blocks of one split product, each of which
// writes a disjoint set of elements of the same exclusively borrowed buffer.
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The block starting `cols` columns to the right.
    fn right(self, cols: usize) -> Self {
        // wrapping_add: no dereference here; `gemm_block` is what writes.
        Out { ptr: self.ptr.wrapping_add(cols), ..self }
    }
}

/// The signature of matrixmultiply's `sgemm`/`dgemm`: `m, k, n, alpha, a, rsa, csa, b, rsb,
/// csb, beta, c, rsc, csc`.
type RawGemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// A kernel of our own for `C = alpha·A·Bᵀ + beta·C` with both operands read along rows
/// ([`dot::dot_nt`]'s signature: `m, n, k, alpha, a, lda, b, ldb, beta, c, ldc`).
type DotKernel<T> = fn(usize, usize, usize, T, &[T], usize, &[T], usize, T, &mut [T], usize);

/// A kernel of our own for `C = alpha·A·B + beta·C` with `B`'s rows contiguous
/// ([`axpy::axpy_nn`]'s signature: `m, n, k, alpha, (a, rsa, csa), b, ldb, beta, c, ldc`).
type AxpyKernel<T> = fn(usize, usize, usize, T, (&[T], usize, usize), &[T], usize, T, &mut [T], usize);

/// A copy of a column-major operand into row-major order ([`transpose::rows_from_columns`]'s
/// signature: `src, ld, k, n, dst`).
type RowsFromColumns<T> = fn(&[T], usize, usize, usize, &mut [T]);

/// The raw GEMM of one precision: `matrixmultiply`'s `sgemm` or `dgemm`, and the kernels of
/// our own that precision has. A supertrait of [`Element`], sealed by living in this private
/// module; only `gemm_block` calls the GEMM.
pub trait Gemm: Sized {
    /// The routine. Its contract: the pointers and strides describe valid `m×k`, `k×n` and
    /// `m×n` matrices, and `c` aliases neither `a` nor `b`.
    const RAW_GEMM: RawGemm<Self>;
    /// The dot-product kernel for small row counts, where this precision has one.
    const DOT: Option<DotKernel<Self>>;
    /// The row-axpy kernel for small row counts, where this precision has one.
    const AXPY: Option<AxpyKernel<Self>>;
    /// The copy of a column-major operand into row-major order.
    const ROWS_FROM_COLUMNS: RowsFromColumns<Self>;
}

impl Gemm for f32 {
    const RAW_GEMM: RawGemm<f32> = matrixmultiply::sgemm;
    const DOT: Option<DotKernel<f32>> = Some(dot::dot_nt);
    const AXPY: Option<AxpyKernel<f32>> = Some(axpy::axpy_nn);
    const ROWS_FROM_COLUMNS: RowsFromColumns<f32> = transpose::rows_from_columns_f32;
}

impl Gemm for f64 {
    const RAW_GEMM: RawGemm<f64> = matrixmultiply::dgemm;
    const DOT: Option<DotKernel<f64>> = None;
    const AXPY: Option<AxpyKernel<f64>> = None;
    const ROWS_FROM_COLUMNS: RowsFromColumns<f64> = transpose::rows_from_columns;
}

/// `out[j] = alpha·sums[j]`, or `alpha·sums[j] + beta·out[j]` when `beta ≠ 0` (`out` is not
/// read when it is 0, as the GEMM's contract has it): the last step of every element of the
/// kernels of our own, the same on every path.
fn write_scaled(out: &mut [f32], sums: &[f32], alpha: f32, beta: f32) {
    for (o, &s) in out.iter_mut().zip(sums) {
        *o = if beta == 0.0 { alpha * s } else { alpha * s + beta * *o };
    }
}

/// Products of at most this many rows whose left operand's rows and right operand's columns
/// are contiguous (a layer's `x·Wᵀ` at a small batch) go to the dot-product kernel
/// ([`dot`]), which reads both in place; matrixmultiply would pack the whole weight for a
/// few rows of output.
const DOT_MAX_ROWS: usize = 32;

/// Products of at most this many rows whose right operand's rows are contiguous (a layer's
/// input gradient `G·W` up to the default batch of 128, the forwards on the row-major copy of
/// `Wᵀ`, and the 100 rows of an importance-weighted decoder's 20×5 draws) go to the row-axpy
/// kernel ([`axpy`]), which reads both operands in place where matrixmultiply packs both.
/// Above 128 rows the AVX2 tile is slower than matrixmultiply (the k = 5000 evaluation took
/// 1.5 times as long through it), the AVX-512 tile faster: with AVX-512 the kernel takes
/// those products too where it gives matrixmultiply's bits ([`same_bits_as_library`]), so
/// that a run's bits do not depend on the path (`docs/performance.md`).
const AXPY_MAX_ROWS: usize = 128;

/// Elements of `b` up to which the AVX-512 axpy kernel takes products of more than
/// [`AXPY_MAX_ROWS`] rows: 1 MiB of `f32`, an L2 cache of Zen 4, so that `b` stays there
/// while every block of `a`'s rows passes over it (a layer's weight, 200×784 in the k = 5000
/// evaluation). A larger `b`, as in some of the convolutional VAE's products, is read from
/// farther for each block, and matrixmultiply, which packs it in cache-sized blocks, is
/// faster there (the convolutional step 1.02 times as slow without this bound, Zen 4).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const AXPY_WIDE_MAX_B: usize = 1 << 18;

/// The depth up to which matrixmultiply sums an `f32` product in one block (its `S_KC`, 256
/// unless `MATMUL_SGEMM_KC` sets another at its build). Up to it, each element of its product
/// is one chain of fused multiply-adds over `k` in order from zero, then `alpha·ab + beta·c`
/// with `alpha·ab` fused into the add, as in the axpy kernel on every path; deeper, it adds
/// the blocks' sums into `C` one by one.
const LIBRARY_KC: usize = 256;

/// Whether the axpy kernel computes a product of depth `k` with these scales to the bits
/// matrixmultiply gives: within one of its blocks, with `alpha` = 1 (so the fused and the
/// rounded `alpha·ab` agree). `crates/tensor/tests/threads.rs` compares the two.
fn same_bits_as_library<T: Element>(k: usize, alpha: T) -> bool {
    k <= LIBRARY_KC && alpha == T::one()
}

/// Products at most this deep (`k`) whose right operand's rows are contiguous go to the
/// row-axpy kernel whatever their row count: a layer's weight gradient `Gᵀ·X` at a batch of
/// at most 32, where matrixmultiply would pack both operands for a few multiply-adds per
/// element. (At depth 100 and more matrixmultiply, packing `X` once, is as fast or faster.)
const AXPY_MAX_DEPTH: usize = 32;

/// Products of at most this many rows that a kernel of our own takes are split among threads
/// by blocks of columns (each block reads its own part of the weight); products with more
/// rows, by blocks of rows.
const OWN_COLUMN_SPLIT_MAX_ROWS: usize = 32;
const _: () = assert!(DOT_MAX_ROWS <= OWN_COLUMN_SPLIT_MAX_ROWS);

/// A kernel of our own that takes a whole product.
#[derive(Clone, Copy)]
enum Own<T> {
    Dot(DotKernel<T>),
    Axpy(AxpyKernel<T>),
}

/// The kernel of our own that takes this product, if one does. The choice depends on the
/// whole product's shape and strides alone, never on the pool or a block, and each kernel
/// computes an element the same way wherever a block starts, so the bits stay the same at
/// any thread count.
///
/// The kernels beat matrixmultiply through their vector paths only. Where the CPU has none,
/// the portable path (the reference the others are tested against) is plain loops of
/// `mul_add`, which without a fused instruction, as on wasm32, is a library call per
/// element: there matrixmultiply takes every product (except under Miri, which checks the
/// kernels through the portable path).
fn own_kernel<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &Operand<T>,
    b: &Operand<T>,
) -> Option<Own<T>> {
    let path = Path::detect();
    if !cfg!(miri) && path == Path::Portable {
        return None;
    }
    if let Some(dot) = T::DOT.filter(|_| m <= DOT_MAX_ROWS && a.cs == 1 && b.rs == 1) {
        return Some(Own::Dot(dot));
    }
    let rows = m <= AXPY_MAX_ROWS || k <= AXPY_MAX_DEPTH || wide_axpy(path, k, n, alpha);
    T::AXPY.filter(|_| rows && b.cs == 1).map(Own::Axpy)
}

/// Whether the axpy kernel takes a product of more than [`AXPY_MAX_ROWS`] rows and depth
/// `k` onto `n` columns: on the AVX-512 path, where `b` fits [`AXPY_WIDE_MAX_B`] and the
/// kernel gives matrixmultiply's bits.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn wide_axpy<T: Element>(path: Path, k: usize, n: usize, alpha: T) -> bool {
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx512 {
        return k.saturating_mul(n) <= AXPY_WIDE_MAX_B && same_bits_as_library(k, alpha);
    }
    false
}

/// The one GEMM call: `c = alpha·a·b + beta·c` for `a` `m×k`, `b` `k×n`, and `c` the `m×n`
/// block at `c.ptr` with row stride `c.rs`, single-threaded.
///
/// # Safety
/// `c` must be valid for reads and writes of that block, and no other thread may access
/// those elements during the call.
unsafe fn gemm_block<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Operand<T>,
    b: Operand<T>,
    beta: T,
    c: Out<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: inside the block the caller vouches for.
                let p = unsafe { &mut *c.ptr.add(i * c.rs + j) };
                *p = if beta == T::zero() { T::zero() } else { *p * beta };
            }
        }
        return;
    }
    GEMM_CALLS.fetch_add(1, Ordering::Relaxed);
    let (rsa, csa) = a.checked_strides("lhs", m, k);
    let (rsb, csb) = b.checked_strides("rhs", k, n);
    let rsc = isize::try_from(c.rs).expect("gemm: output row stride fits isize");
    // SAFETY: `checked_strides` proved, without wrapping, that every element matrixmultiply
    // reads (offset + i·rs + j·cs for i, j inside the matrix, all nonnegative) lies inside
    // `a.data` and `b.data`, so the offset pointers and every step from them stay in their
    // allocations; the caller vouches for the block it writes, which therefore aliases
    // neither input (they are shared borrows).
    unsafe {
        T::RAW_GEMM(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr().add(a.offset),
            rsa,
            csa,
            b.data.as_ptr().add(b.offset),
            rsb,
            csb,
            beta,
            c.ptr,
            rsc,
            1,
        );
    }
}

/// Panics unless an output buffer of `len` elements holds a row-major `m×n` matrix (the
/// product checked, so a wrapped size cannot pass).
#[track_caller]
fn assert_holds(len: usize, m: usize, n: usize) {
    if m.checked_mul(n).is_none_or(|mn| mn > len) {
        panic!("gemm: output buffer of {len} elements for {m}x{n}");
    }
}

/// A product through a kernel of our own, without its output: what every block of it shares.
/// `a` is `m×k` and `b` `k×n`; a block is the product of some of `a`'s rows and `b`'s
/// columns, and the kernels compute an element the same way in any block, so the bits do
/// not depend on how the output is cut.
#[derive(Clone, Copy)]
struct OwnProduct<'a, T> {
    own: Own<T>,
    k: usize,
    alpha: T,
    a: Operand<'a, T>,
    b: Operand<'a, T>,
    beta: T,
    /// The values `beta` scales, the same in every row (a layer's bias, from `b`'s first
    /// column on), in place of the output's own; `beta` is 1 then.
    row: Option<&'a [T]>,
}

/// One segment of each row of a few-row product's output, all of the same width.
type RowSegments<'c, T> = SmallVec<[&'c mut [T]; OWN_COLUMN_SPLIT_MAX_ROWS]>;

/// Elements of the tile a column block is computed in before it is copied to its rows.
const COLUMN_TILE: usize = 4096;

/// Rows of the output written with the broadcast row at a time, each run through the kernel
/// right after, while it is in cache: 64 rows of a 784-wide layer are 200 KB.
const ROW_FILL: usize = 64;

impl<T: Element> OwnProduct<'_, T> {
    /// The product with `a` starting `rows` rows down.
    fn down(self, rows: usize) -> Self {
        OwnProduct { a: self.a.down(rows), ..self }
    }

    /// The product with `b` (and the row) starting `cols` columns to the right.
    fn right(self, cols: usize) -> Self {
        OwnProduct { b: self.b.right(cols), row: self.row.map(|r| &r[cols..]), ..self }
    }

    /// `m` rows by `n` columns of the product into `c` (row-major, row stride `ldc`): with a
    /// broadcast row, by runs of [`ROW_FILL`] rows, each written with the row and then
    /// accumulated into.
    fn block(self, m: usize, n: usize, c: &mut [T], ldc: usize) {
        let Some(row) = self.row else {
            return self.kernel(m, n, c, ldc);
        };
        for i0 in (0..m).step_by(ROW_FILL) {
            let rows = ROW_FILL.min(m - i0);
            let c = &mut c[i0 * ldc..];
            for r in 0..rows {
                c[r * ldc..][..n].copy_from_slice(&row[..n]);
            }
            self.down(i0).kernel(rows, n, c, ldc);
        }
    }

    /// `m` rows by `n` columns of the product into `c` through the kernel.
    fn kernel(self, m: usize, n: usize, c: &mut [T], ldc: usize) {
        let OwnProduct { own, k, alpha, a, b, beta, .. } = self;
        // Offsets are at most their storage's length (a valid layout's first index, or an
        // empty one's offset), so the slices start inside; the kernels check the rest.
        let (ad, bd) = (&a.data[a.offset..], &b.data[b.offset..]);
        match own {
            Own::Dot(dot) => dot(m, n, k, alpha, ad, a.rs, bd, b.cs, beta, c, ldc),
            Own::Axpy(axpy) => axpy(m, n, k, alpha, (ad, a.rs, a.cs), bd, b.rs, beta, c, ldc),
        }
    }

    /// The whole `m×n` product (at most [`OWN_COLUMN_SPLIT_MAX_ROWS`] rows) into the
    /// row-major `c`, in `blocks` blocks of columns, one task each, forked as a tree of
    /// `rayon::join`s. Each task reads all of `a` (a few rows) and its own columns of `b`, so
    /// the weight is read once in all, and writes its own segment of every row of `c` in
    /// place.
    fn columns(self, m: usize, n: usize, c: &mut [T], blocks: usize) {
        assert_holds(c.len(), m, n);
        assert!(m <= OWN_COLUMN_SPLIT_MAX_ROWS, "own columns: {m} rows");
        let rows: RowSegments<T> = c[..m * n].chunks_mut(n).collect();
        self.column_blocks(rows, blocks);
    }

    /// The columns of `b` from its first, into the output rows' segments `rows`, in `blocks`
    /// blocks: halved until one block is left, each half on its own side of a `rayon::join`.
    fn column_blocks(self, mut rows: RowSegments<T>, blocks: usize) {
        if blocks < 2 {
            return self.column_block(&mut rows);
        }
        let width = rows.first().map_or(0, |r| r.len());
        let left = blocks / 2;
        let mid = width * left / blocks;
        let (mut l, mut r) = (RowSegments::new(), RowSegments::new());
        for row in rows {
            let (x, y) = row.split_at_mut(mid);
            l.push(x);
            r.push(y);
        }
        rayon::join(|| self.column_blocks(l, left), || self.right(mid).column_blocks(r, blocks - left));
    }

    /// One block of columns (`b` starting at its first column) into the row segments `rows`:
    /// in runs of columns through a tile on the stack (holding the segments, or the broadcast
    /// row, first when `beta` reads them), each run copied out to the segments.
    fn column_block(self, rows: &mut [&mut [T]]) {
        let (m, width) = (rows.len(), rows.first().map_or(0, |r| r.len()));
        if m == 0 {
            return;
        }
        let mut tile = [T::default(); COLUMN_TILE];
        let run = COLUMN_TILE / m;
        for j in (0..width).step_by(run) {
            let w = run.min(width - j);
            let tile = &mut tile[..m * w];
            if let Some(row) = self.row {
                for t in tile.chunks_mut(w) {
                    t.copy_from_slice(&row[j..j + w]);
                }
            } else if self.beta != T::zero() {
                for (t, row) in tile.chunks_mut(w).zip(rows.iter()) {
                    t.copy_from_slice(&row[j..j + w]);
                }
            }
            self.right(j).kernel(m, w, tile, w);
            for (t, row) in tile.chunks(w).zip(rows.iter_mut()) {
                row[j..j + w].copy_from_slice(t);
            }
        }
    }
}

/// A single-threaded GEMM (matrixmultiply) into the row-major `m×n` buffer `c`.
fn gemm_serial<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Operand<T>,
    b: Operand<T>,
    beta: T,
    c: &mut [T],
) {
    assert_holds(c.len(), m, n);
    // SAFETY: `c` is an exclusive borrow of at least m·n elements (checked without
    // wrapping), row stride n.
    unsafe { gemm_block(m, k, n, alpha, a, b, beta, Out { ptr: c.as_mut_ptr(), rs: n }) }
}

/// The product `c = alpha·a·b + beta·c` into the row-major `m×n` buffer `c`: through a kernel
/// of our own where [`own_kernel`] finds one for the whole product, else matrixmultiply's
/// [`gemm_serial`]; split into disjoint blocks of `c` on the rayon pool when `split` allows
/// it and the product is large enough to pay for it, each block one single-threaded call. Each block packs
/// the whole of the operand it shares with the others, so the split runs along the longer
/// side of `c`: row blocks share `b` (`k×n`), column blocks share `a` (`m×k`).
///
/// The blocks are a cover of `c` by construction: row blocks are `chunks` of the buffer and
/// column blocks start at `(0..n).step_by(width)`, so no block starts past the edge, however
/// many threads the pool has. How many blocks there are depends on the pool; the bits of the
/// result do not. matrixmultiply computes `c` in micro-kernel tiles, and an element's sum
/// over `k` runs in the same order in any tile; only a tile cut by the edge of its call
/// finishes differently (through a buffer: `alpha·ab` rounded, then `+ beta·c`). Blocks
/// start at multiples of [`BLOCK_ALIGN`], so they cut no tile the whole product would not,
/// and each element is computed exactly as on one thread. `tests/threads.rs` checks this
/// bit for bit on pools of 1 to 64 threads.
#[allow(clippy::too_many_arguments)]
fn gemm<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Operand<T>,
    b: Operand<T>,
    (beta, row): (T, Option<&[T]>),
    c: &mut [T],
    split: bool,
) {
    let threads = if split { rayon::current_num_threads() } else { 1 };
    let large = m.saturating_mul(k).saturating_mul(n) >= PAR_MIN_MACS;
    if let Some(row) = row {
        assert!(row.len() >= n && beta == T::one(), "gemm: a row of {} for {n} columns", row.len());
    }
    if let Some(own) = own_kernel(m, k, n, alpha, &a, &b) {
        let product = OwnProduct { own, k, alpha, a, b, beta, row };
        let macs = m.saturating_mul(k).saturating_mul(n);
        let few_rows = m <= OWN_COLUMN_SPLIT_MAX_ROWS;
        // Blocks of rows, as even as the row count allows (the kernels' tiles need no
        // alignment: an element is computed the same way in any block); from
        // OWN_SPLIT_MIN_MACS when there are many rows (a weight gradient at a small batch,
        // whose `b` every block reads is a few rows of activations).
        let by_rows = large || (!few_rows && macs >= OWN_SPLIT_MIN_MACS);
        let blocks = if by_rows { threads.min(m) } else { 1 };
        if blocks < 2 && threads > 1 && few_rows && macs >= OWN_SPLIT_MIN_MACS && n >= 2 * BLOCK_ALIGN {
            return product.columns(m, n, c, threads.min(n / BLOCK_ALIGN));
        }
        if blocks < 2 {
            return product.block(m, n, c, n);
        }
        assert_holds(c.len(), m, n);
        let rows = m.div_ceil(blocks);
        c[..m * n].par_chunks_mut(rows * n).enumerate().for_each(|(i, block)| {
            product.down(i * rows).block(block.len() / n, n, block, n);
        });
        return;
    }
    if let (Some(row), true) = (row, n > 0) {
        // matrixmultiply reads `beta·c` from `c`: the row goes there first.
        assert_holds(c.len(), m, n);
        let row = &row[..n];
        if threads > 1 && m * n >= crate::kernels::PAR_MIN_LEN {
            c[..m * n].par_chunks_mut(n).for_each(|r| r.copy_from_slice(row));
        } else {
            c[..m * n].chunks_mut(n).for_each(|r| r.copy_from_slice(row));
        }
    }
    let blocks = threads.min(m.max(n) / BLOCK_ALIGN);
    if blocks < 2 || !large {
        return gemm_serial(m, k, n, alpha, a, b, beta, c);
    }
    assert_holds(c.len(), m, n);
    if m >= n {
        let rows = m.div_ceil(blocks).next_multiple_of(BLOCK_ALIGN);
        c[..m * n].par_chunks_mut(rows * n).enumerate().for_each(|(i, block)| {
            gemm_serial(block.len() / n, k, n, alpha, a.down(i * rows), b, beta, block);
        });
    } else {
        let cols = n.div_ceil(blocks).next_multiple_of(BLOCK_ALIGN);
        let out = Out { ptr: c.as_mut_ptr(), rs: n };
        (0..n).into_par_iter().step_by(cols).for_each(|first| {
            let width = cols.min(n - first);
            // SAFETY: `first < n`, so this block is columns `first..first + width` of every
            // row of `c`: inside its m·n elements (asserted above) and disjoint from every
            // other block; `c` stays exclusively borrowed until all blocks are done.
            unsafe { gemm_block(m, k, width, alpha, a, b.right(first), beta, out.right(first)) }
        });
    }
}

/// `Tensor` products (not batched) of at most this many rows on a column-major `b` go
/// through a row-major copy of it ([`row_major_copy`]), which the axpy kernel reads in place
/// ([`AXPY_MAX_ROWS`], the same bound): a layer's forward at the default batch of 128, and at
/// an importance-weighted decoder's 100 rows. Products the dot kernel takes (at most 32 rows)
/// keep it: the copy made Burda et al.'s batch-20 step 5 % slower on two threads (Zen 4).
const COPY_MAX_ROWS: usize = AXPY_MAX_ROWS;

/// `Tensor` products (not batched) of at least this many rows read a column-major `b` (a
/// layer's `Wᵀ`, at the k = 5000 evaluation's 5000 rows) through a row-major copy
/// ([`row_major_copy`]): the AVX-512 axpy kernel reads the copy in place where it takes the
/// product, and matrixmultiply's packing, which each thread's block of rows repeats, copies
/// runs of its rows where it would gather elements one at a time (the evaluation 0.97 of
/// the time on two threads with matrixmultiply, no change on one; Zen 4,
/// `docs/performance.md`). Copying a row-major `a` into columns as well, for the packing of
/// `a`, cost as much as it saved. Between [`COPY_MAX_ROWS`] and this bound the copy is made
/// only where the AVX-512 axpy kernel takes the product from it.
const PACK_COPY_MIN_ROWS: usize = 512;

/// Elements from which the row-major copy of a column-major `b` is split among threads.
const COPY_SPLIT_MIN: usize = 1 << 16;

/// A column-major `b` (a layer's `Wᵀ`, `k×n`) copied into row-major order, in a buffer from
/// the storage pool (to give back when done), by blocks of its rows on the pool's threads
/// when it is large: the row-axpy kernel reads the copy in place, and where no kernel of our
/// own runs (`f64`, a CPU without AVX2) matrixmultiply packs it from contiguous runs
/// ([`transpose`]). The copy moves values only, so the bits do not depend on the pool.
/// `None` when the buffer cannot be had.
fn row_major_copy<T: Element>(b: Operand<T>, k: usize, n: usize) -> Option<std::sync::Arc<Vec<T>>> {
    let mut copy = crate::pool::take::<T>(k.checked_mul(n)?).ok()?;
    let dst = std::sync::Arc::get_mut(&mut copy)?;
    let threads = rayon::current_num_threads();
    let src = &b.data[b.offset..];
    if threads > 1 && k * n >= COPY_SPLIT_MIN {
        // Blocks of whole 8-row strips, so each block copies in full 8×8 blocks as the
        // whole copy would.
        let rows = k.div_ceil(threads).next_multiple_of(8);
        dst.par_chunks_mut(rows * n).enumerate().for_each(|(i, block)| {
            T::ROWS_FROM_COLUMNS(&src[i * rows..], b.cs, block.len() / n, n, block);
        });
    } else {
        T::ROWS_FROM_COLUMNS(src, b.cs, k, n, dst);
    }
    Some(copy)
}

/// The shapes of a (batched) product: batch shape, `m`, `k`, `n`, and both operand layouts
/// broadcast over the batch shape.
struct Plan {
    batch: Dims,
    m: usize,
    k: usize,
    n: usize,
    la: Layout,
    lb: Layout,
}

impl Plan {
    fn new<T: Element>(op: &'static str, a: &Tensor<T>, b: &Tensor<T>) -> Result<Plan> {
        let mismatch = || TensorError::ShapeMismatch { op, lhs: a.shape().to_vec(), rhs: b.shape().to_vec() };
        if a.rank() < 2 || b.rank() < 2 {
            return Err(TensorError::Invalid {
                op,
                msg: format!("needs operands of rank 2 or more, got {:?} and {:?}", a.shape(), b.shape()),
            });
        }
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch =
            broadcast_shapes(op, &a.shape()[..ra - 2], &b.shape()[..rb - 2]).map_err(|_| mismatch())?;
        let full = |r: usize, c: usize| -> Dims { batch.iter().copied().chain([r, c]).collect() };
        let la = a.layout().broadcast_to(&full(m, k))?;
        let lb = b.layout().broadcast_to(&full(k, n))?;
        Ok(Plan { batch, m, k, n, la, lb })
    }

    fn out_shape(&self) -> Dims {
        self.batch.iter().copied().chain([self.m, self.n]).collect()
    }

    fn nbatch(&self) -> usize {
        crate::layout::count(&self.batch)
    }

    /// The 2-D operand of batch `i` in layout `l` over `data`.
    fn operand<'a, T>(&self, data: &'a [T], l: &Layout, mut i: usize) -> Operand<'a, T> {
        let r = l.rank();
        let mut offset = l.offset();
        if l.is_empty() {
            // Never read (`k` is 0, or there is no output); its strides need not add up.
            return Operand { data, offset, rs: 0, cs: 0 };
        }
        for ax in (0..r - 2).rev() {
            offset += (i % l.shape()[ax]) * l.strides()[ax];
            i /= l.shape()[ax];
        }
        Operand { data, offset, rs: l.strides()[r - 2], cs: l.strides()[r - 1] }
    }

    /// `c = alpha·a·b + beta·c` over every batch, `c` row-major of [`out_shape`](Self::out_shape);
    /// with a `row` of `n` values (and `beta` = 1), `c`'s old values are that row in every
    /// row, whatever `c` holds.
    fn run<T: Element>(&self, alpha: T, a: &[T], b: &[T], (beta, row): (T, Option<&[T]>), c: &mut [T]) {
        let (m, k, n) = (self.m, self.k, self.n);
        let nb = self.nbatch();
        let ops = |i: usize| (self.operand(a, &self.la, i), self.operand(b, &self.lb, i));
        if nb == 1 {
            let (oa, ob) = ops(0);
            // A column-major `b` in rows: for the axpy kernel (few rows, or any number on
            // AVX-512 where it gives matrixmultiply's bits), or for matrixmultiply's packing
            // (many rows), which then copies runs of each row where it would gather one
            // element at a time. With many rows the copy leaves products at most
            // AXPY_MAX_DEPTH deep to matrixmultiply elsewhere (the axpy kernel would take
            // them on every path, and its AVX2 tile is the slower there).
            let copy_b = own_kernel(m, k, n, alpha, &oa, &ob).is_none()
                && (m <= COPY_MAX_ROWS
                    || wide_axpy(Path::detect(), k, n, alpha)
                    || (m >= PACK_COPY_MIN_ROWS && k > AXPY_MAX_DEPTH))
                && ob.rs == 1
                && ob.cs > 1
                && k > 1
                && n > 1;
            let mut copy = if copy_b { row_major_copy(ob, k, n) } else { None };
            let ob = copy.as_deref().map_or(ob, |data| Operand { data, offset: 0, rs: n, cs: 1 });
            debug_assert!(
                !copy_b
                    || m <= COPY_MAX_ROWS
                    || own_kernel(m, k, n, alpha, &oa, &ob).is_none()
                    || same_bits_as_library(k, alpha),
                "{m}x{k}x{n}"
            );
            gemm(m, k, n, alpha, oa, ob, (beta, row), c, true);
            if let Some(copy) = &mut copy {
                crate::pool::give(copy);
            }
        } else if m * n > 0
            && nb.saturating_mul(m).saturating_mul(k).saturating_mul(n) >= PAR_MIN_MACS
            && rayon::current_num_threads() > 1
        {
            c.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| {
                let (oa, ob) = ops(i);
                gemm(m, k, n, alpha, oa, ob, (beta, row), c, false);
            });
        } else if m * n > 0 {
            for (i, c) in c.chunks_mut(m * n).enumerate() {
                let (oa, ob) = ops(i);
                gemm(m, k, n, alpha, oa, ob, (beta, row), c, true);
            }
        }
    }
}

impl<T: Element> Tensor<T> {
    /// The matrix product over the last two axes; leading axes are batch axes that
    /// broadcast. Operands of any strides are read in place, except a column-major right
    /// operand that no kernel of our own reads in place, which is copied into rows first where
    /// the product has at most 128 rows or at least 512, or where the AVX-512 axpy kernel
    /// takes it from the copy. Panics, naming both shapes, when the inner dimensions differ or
    /// an operand has rank below 2.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let a = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    /// let b = Tensor::<f64>::ones(&[3, 1]);
    /// assert_eq!(a.matmul(&b).to_vec(), vec![3.0, 12.0]);
    /// // aᵀ·a reads `a` through strides; nothing is copied.
    /// assert_eq!(a.t().matmul(&a).shape(), &[3, 3]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor<T>) -> Tensor<T> {
        ok(self.try_matmul(rhs))
    }

    /// Fallible [`matmul`](Self::matmul).
    pub fn try_matmul(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
        let plan = Plan::new("matmul", self, rhs)?;
        let shape = plan.out_shape();
        // beta = 0: the GEMM writes every element without reading the stale buffer.
        Tensor::try_fill_new(&shape, |out| {
            plan.run(T::one(), self.storage(), rhs.storage(), (T::zero(), None), out)
        })
    }

    /// `self·rhs + bias`, the `[n]` `bias` added to every row of the product (a layer's
    /// `x·Wᵀ + b`): the same bits as writing `bias` into every row and accumulating the
    /// product into it ([`matmul_acc`](Self::matmul_acc) with `alpha` = `beta` = 1), where
    /// the kernels of our own write the bias a few rows at a time, just before they
    /// accumulate into them. Panics, naming the shapes, when they do not fit.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1., 2., 3., 4.], &[2, 2]);
    /// let b = Tensor::from_vec(vec![10., 20.], &[2]);
    /// assert_eq!(x.matmul_bias(&Tensor::eye(2), &b).to_vec(), vec![11., 22., 13., 24.]);
    /// ```
    #[track_caller]
    pub fn matmul_bias(&self, rhs: &Tensor<T>, bias: &Tensor<T>) -> Tensor<T> {
        ok(self.try_matmul_bias(rhs, bias))
    }

    /// Fallible [`matmul_bias`](Self::matmul_bias).
    pub fn try_matmul_bias(&self, rhs: &Tensor<T>, bias: &Tensor<T>) -> Result<Tensor<T>> {
        let plan = Plan::new("matmul_bias", self, rhs)?;
        if bias.shape() != [plan.n] {
            return Err(TensorError::ShapeMismatch {
                op: "matmul_bias (bias)",
                lhs: plan.out_shape().to_vec(),
                rhs: bias.shape().to_vec(),
            });
        }
        let bias = bias.contiguous();
        let row = bias.as_slice().expect("contiguous");
        let shape = plan.out_shape();
        Tensor::try_fill_new(&shape, |out| {
            plan.run(T::one(), self.storage(), rhs.storage(), (T::one(), Some(row)), out)
        })
    }

    /// `self = alpha·a·b + beta·self` in place (the GEMM accumulate form that backward
    /// passes use to add a product into an existing gradient). `self` must have the shape of
    /// `a.matmul(b)`; it is made contiguous and sole owner of its storage first if needed.
    #[track_caller]
    pub fn matmul_acc(&mut self, alpha: T, a: &Tensor<T>, b: &Tensor<T>, beta: T) {
        ok(self.try_matmul_acc(alpha, a, b, beta))
    }

    /// Fallible [`matmul_acc`](Self::matmul_acc).
    pub fn try_matmul_acc(&mut self, alpha: T, a: &Tensor<T>, b: &Tensor<T>, beta: T) -> Result<()> {
        let plan = Plan::new("matmul_acc", a, b)?;
        if self.shape() != plan.out_shape().as_slice() {
            return Err(TensorError::ShapeMismatch {
                op: "matmul_acc",
                lhs: self.shape().to_vec(),
                rhs: plan.out_shape().to_vec(),
            });
        }
        plan.run(alpha, a.storage(), b.storage(), (beta, None), self.make_mut_slice());
        Ok(())
    }
}

/// `c = alpha·a·b + beta·c` on slices, single-threaded: `a` is `m×k` with strides
/// `(rsa, csa)`, `b` is `k×n` with strides `(rsb, csb)`, `c` is row-major `m×n`. The one
/// GEMM call with nothing of the tensor API around it: benchmarks compare the API with it.
/// Panics, without touching memory, if a matrix reaches past its slice.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn gemm_slices<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: (&[T], usize, usize),
    b: (&[T], usize, usize),
    beta: T,
    c: &mut [T],
) {
    gemm_serial(m, k, n, alpha, a.into(), b.into(), beta, c);
}

/// `c = alpha·a·b + beta·c` on slices for the convolutions: `a` is `m×k` with strides
/// `(rsa, csa)`, `b` is `k×n` with strides `(rsb, csb)`, `c` is row-major `m×n`; split over
/// the pool exactly as every other product is (so the bits do not depend on it).
pub(crate) fn gemm_strided<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: (&[T], usize, usize),
    b: (&[T], usize, usize),
    beta: T,
    c: &mut [T],
) {
    gemm(m, k, n, T::one(), a.into(), b.into(), (beta, None), c, true);
}
