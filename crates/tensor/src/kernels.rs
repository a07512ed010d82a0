//! The elementwise engines every named operation is built on: a contiguous fast path that
//! the compiler vectorizes, a general strided path that walks rows of the last axis, and
//! rayon over fixed-size chunks above [`PAR_MIN_LEN`] elements. Chunk boundaries never
//! depend on the thread count, so results are the same at any number of threads.

use rayon::prelude::*;

use crate::element::Element;
use crate::error::Result;
use crate::layout::{broadcast_shapes, Layout};
use crate::simd::{vectorized, VectorLoop};
use crate::tensor::Tensor;

/// Below this many elements a kernel stays on the calling thread.
pub const PAR_MIN_LEN: usize = 1 << 15;
/// Elements per parallel task.
const PAR_CHUNK: usize = 1 << 15;

/// Whether a kernel over `n` elements should split across the rayon pool: only when it is
/// large and there is more than one thread (a one-thread pool would only add hand-offs).
#[inline]
pub fn parallel(n: usize) -> bool {
    n >= PAR_MIN_LEN && rayon::current_num_threads() > 1
}

/// `out[i] = f(src[i])` over equal-length slices. Every contiguous unary loop goes through
/// here, so that `f` has one call site and is inlined into a loop that vectorizes.
#[inline(never)]
pub(crate) fn fill_unary<T: Element, F: Fn(T) -> T>(out: &mut [T], src: &[T], f: &F) {
    struct Loop<'a, T, F>(&'a mut [T], &'a [T], &'a F);
    impl<T: Element, F: Fn(T) -> T> VectorLoop for Loop<'_, T, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Loop(out, src, f) = self;
            out.iter_mut().zip(src).for_each(|(o, &s)| *o = f(s));
        }
    }
    vectorized(Loop(out, src, f));
}

/// `out[i] = f(a[i], b[i])` over equal-length slices; the binary twin of [`fill_unary`].
#[inline(never)]
fn fill_binary<T: Element, F: Fn(T, T) -> T>(out: &mut [T], a: &[T], b: &[T], f: &F) {
    struct Loop<'a, T, F>(&'a mut [T], &'a [T], &'a [T], &'a F);
    impl<T: Element, F: Fn(T, T) -> T> VectorLoop for Loop<'_, T, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Loop(out, a, b, f) = self;
            out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| *o = f(a, b));
        }
    }
    vectorized(Loop(out, a, b, f));
}

/// `out[i] = f(out[i])` in place (one call site, so `f` inlines).
#[inline(never)]
fn assign_unary<T: Element, F: Fn(T) -> T>(out: &mut [T], f: &F) {
    struct Loop<'a, T, F>(&'a mut [T], &'a F);
    impl<T: Element, F: Fn(T) -> T> VectorLoop for Loop<'_, T, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Loop(out, f) = self;
            out.iter_mut().for_each(|x| *x = f(*x));
        }
    }
    vectorized(Loop(out, f));
}

/// `out[i] = f(out[i], b[i])` over equal-length slices (one call site, so `f` inlines).
#[inline(never)]
pub(crate) fn assign_binary<T: Element, F: Fn(T, T) -> T>(out: &mut [T], b: &[T], f: &F) {
    struct Loop<'a, T, F>(&'a mut [T], &'a [T], &'a F);
    impl<T: Element, F: Fn(T, T) -> T> VectorLoop for Loop<'_, T, F> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            let Loop(out, b, f) = self;
            out.iter_mut().zip(b).for_each(|(o, &b)| *o = f(*o, b));
        }
    }
    vectorized(Loop(out, b, f));
}

/// Runs `rows(first_row, chunk)` over `out` seen as rows of `inner` elements: on the calling
/// thread, or in chunks of whole rows (about [`PAR_CHUNK`] elements each) on the rayon pool
/// when [`parallel`] says so.
fn for_rows<T: Send, R: Fn(usize, &mut [T]) + Sync>(out: &mut [T], inner: usize, rows: R) {
    if parallel(out.len()) {
        let rows_per_task = PAR_CHUNK.div_ceil(inner);
        out.par_chunks_mut(rows_per_task * inner)
            .enumerate()
            .for_each(|(t, chunk)| rows(t * rows_per_task, chunk));
    } else {
        rows(0, out);
    }
}

/// Fills `out` (row-major, the shape of `layout`) with `f(src[i])`.
fn unary_into<T: Element, F>(src: &[T], layout: &Layout, out: &mut [T], f: F)
where
    F: Fn(T) -> T + Sync,
{
    let n = out.len();
    if layout.is_contiguous() {
        let src = &src[layout.offset()..layout.offset() + n];
        if parallel(n) {
            out.par_chunks_mut(PAR_CHUNK)
                .zip(src.par_chunks(PAR_CHUNK))
                .for_each(|(o, s)| fill_unary(o, s, &f));
        } else {
            fill_unary(out, src, &f);
        }
        return;
    }
    let (inner, stride) = layout.inner();
    if inner == 0 {
        return;
    }
    let rows = |first_row: usize, chunk: &mut [T]| {
        for (r, o) in chunk.chunks_mut(inner).enumerate() {
            let base = layout.row_offset(first_row + r);
            if stride == 1 {
                fill_unary(o, &src[base..base + inner], &f);
            } else {
                o.iter_mut().enumerate().for_each(|(j, o)| *o = f(src[base + j * stride]));
            }
        }
    };
    for_rows(out, inner, rows);
}

/// Fills `out` (row-major, the common shape of both layouts) with `f(a[i], b[i])`.
fn binary_into<T: Element, F>(a: &[T], la: &Layout, b: &[T], lb: &Layout, out: &mut [T], f: F)
where
    F: Fn(T, T) -> T + Sync,
{
    let n = out.len();
    if la.is_contiguous() && lb.is_contiguous() {
        let a = &a[la.offset()..la.offset() + n];
        let b = &b[lb.offset()..lb.offset() + n];
        if parallel(n) {
            out.par_chunks_mut(PAR_CHUNK)
                .zip(a.par_chunks(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK)))
                .for_each(|(o, (a, b))| fill_binary(o, a, b, &f));
        } else {
            fill_binary(out, a, b, &f);
        }
        return;
    }
    let (inner, sa) = la.inner();
    let (_, sb) = lb.inner();
    if inner == 0 {
        return;
    }
    let rows = |first_row: usize, chunk: &mut [T]| {
        for (r, o) in chunk.chunks_mut(inner).enumerate() {
            let (oa, ob) = (la.row_offset(first_row + r), lb.row_offset(first_row + r));
            match (sa, sb) {
                (1, 1) => fill_binary(o, &a[oa..oa + inner], &b[ob..ob + inner], &f),
                (1, 0) => {
                    let bv = b[ob];
                    fill_unary(o, &a[oa..oa + inner], &|a| f(a, bv));
                }
                (0, 1) => {
                    let av = a[oa];
                    fill_unary(o, &b[ob..ob + inner], &|b| f(av, b));
                }
                _ => o.iter_mut().enumerate().for_each(|(j, o)| *o = f(a[oa + j * sa], b[ob + j * sb])),
            }
        }
    };
    for_rows(out, inner, rows);
}

/// A new contiguous tensor `f(x)` for every element `x` of `t`.
pub fn map<T: Element, F: Fn(T) -> T + Sync>(t: &Tensor<T>, f: F) -> Tensor<T> {
    Tensor::fill_new(t.shape(), |out| unary_into(t.storage(), t.layout(), out, f))
}

/// A new contiguous tensor `f(a, b)` over the numpy broadcast of the two shapes.
pub fn zip<T: Element, F: Fn(T, T) -> T + Sync>(
    op: &'static str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: F,
) -> Result<Tensor<T>> {
    let shape =
        if a.shape() == b.shape() { a.shape().into() } else { broadcast_shapes(op, a.shape(), b.shape())? };
    let la = a.layout().broadcast_to(&shape)?;
    let lb = b.layout().broadcast_to(&shape)?;
    Tensor::try_fill_new(&shape, |out| binary_into(a.storage(), &la, b.storage(), &lb, out, f))
}

/// `a[i] = f(a[i], b[i])` in place, with `b` broadcast to `a`'s shape. `a` is made
/// contiguous and sole owner of its storage first if it is not.
pub fn zip_assign<T: Element, F: Fn(T, T) -> T + Sync + Send>(
    a: &mut Tensor<T>,
    b: &Tensor<T>,
    f: F,
) -> Result<()> {
    let lb = b.layout().broadcast_to(a.shape())?;
    let out = a.make_mut_slice();
    let n = out.len();
    let bs = b.storage();
    if lb.is_contiguous() {
        let b = &bs[lb.offset()..lb.offset() + n];
        if parallel(n) {
            out.par_chunks_mut(PAR_CHUNK)
                .zip(b.par_chunks(PAR_CHUNK))
                .for_each(|(o, b)| assign_binary(o, b, &f));
        } else {
            assign_binary(out, b, &f);
        }
        return Ok(());
    }
    // A broadcast or strided right-hand side, walked row by row of the last axis.
    let (inner, sb) = lb.inner();
    if inner == 0 {
        return Ok(());
    }
    let rows = |first_row: usize, chunk: &mut [T]| {
        for (r, o) in chunk.chunks_mut(inner).enumerate() {
            let ob = lb.row_offset(first_row + r);
            match sb {
                1 => assign_binary(o, &bs[ob..ob + inner], &f),
                0 => {
                    let v = bs[ob];
                    assign_unary(o, &|o| f(o, v));
                }
                _ => o.iter_mut().enumerate().for_each(|(j, o)| *o = f(*o, bs[ob + j * sb])),
            }
        }
    };
    for_rows(out, inner, rows);
    Ok(())
}

/// `a[i] = f(a[i])` in place (copy on write if the storage is shared).
pub fn map_assign<T: Element, F: Fn(T) -> T + Sync + Send>(a: &mut Tensor<T>, f: F) {
    let out = a.make_mut_slice();
    if parallel(out.len()) {
        out.par_chunks_mut(PAR_CHUNK).for_each(|o| assign_unary(o, &f));
    } else {
        assign_unary(out, &f);
    }
}
