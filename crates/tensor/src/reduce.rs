//! Reductions over all axes or one axis (with `keepdim`): sum, mean, max, logsumexp; and
//! `sum_to`, which undoes a broadcast by summing.

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::kernels::{assign_binary, parallel};
use crate::layout::{count, Dims};
use crate::simd::{vectorized, VectorLoop};
use crate::tensor::Tensor;

/// Elements per task of a parallel full sum (fixed, so results do not depend on threads).
const SUM_CHUNK: usize = 1 << 14;

/// Sum of a slice with eight independent accumulators, so that the loop vectorizes.
#[inline]
pub fn sum_slice<T: Element>(s: &[T]) -> T {
    struct Loop<'a, T>(&'a [T]);
    impl<T: Element> VectorLoop for Loop<'_, T> {
        type Output = T;
        #[inline(always)]
        fn run(self) -> T {
            let chunks = self.0.chunks_exact(8);
            let rest = chunks.remainder();
            let mut acc = [T::zero(); 8];
            for c in chunks {
                for i in 0..8 {
                    acc[i] += c[i];
                }
            }
            rest.iter().fold(tree_sum(&acc), |total, &x| total + x)
        }
    }
    vectorized(Loop(s))
}

/// Elements [`sum_zip`] evaluates `f` on at once, before adding them up: one AVX-512
/// register of `f32` (two of AVX2). A block of 64 is 2 to 4 % slower on Zen 4, on both
/// paths (`docs/performance.md`).
const ZIP_BLOCK: usize = 16;

/// `Σ f(a[i], b[i])` over equal-length slices with eight accumulators, element `i` going to
/// accumulator `i mod 8` in order. `f` runs on [`ZIP_BLOCK`] elements at a time into a
/// buffer, so that it vectorizes at the widest width (the accumulators span only 8 lanes),
/// which pays where `f` is costly (the Bernoulli log-likelihood's exp and log); the values
/// then go into the accumulators in the same order as one element at a time, so the bits
/// do not depend on the block.
#[inline(never)]
fn sum_zip<T: Element, F: Fn(T, T) -> T>(a: &[T], b: &[T], f: &F) -> T {
    struct Loop<'a, T, F>(&'a [T], &'a [T], &'a F);
    impl<T: Element, F: Fn(T, T) -> T> VectorLoop for Loop<'_, T, F> {
        type Output = T;
        #[inline(always)]
        fn run(self) -> T {
            let Loop(a, b, f) = self;
            let mut acc = [T::zero(); 8];
            let (ba, bb) = (a.chunks_exact(ZIP_BLOCK), b.chunks_exact(ZIP_BLOCK));
            let (a, b) = (ba.remainder(), bb.remainder());
            for (x, y) in ba.zip(bb) {
                let mut v = [T::zero(); ZIP_BLOCK];
                for i in 0..ZIP_BLOCK {
                    v[i] = f(x[i], y[i]);
                }
                for c in v.chunks_exact(8) {
                    for i in 0..8 {
                        acc[i] += c[i];
                    }
                }
            }
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let (ra, rb) = (ca.remainder(), cb.remainder());
            for (x, y) in ca.zip(cb) {
                for i in 0..8 {
                    acc[i] += f(x[i], y[i]);
                }
            }
            ra.iter().zip(rb).fold(tree_sum(&acc), |total, (&x, &y)| total + f(x, y))
        }
    }
    vectorized(Loop(a, b, f))
}

/// The eight accumulators of [`sum_slice`] and [`sum_zip`] added in a fixed tree.
#[inline(always)]
fn tree_sum<T: Element>(acc: &[T; 8]) -> T {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[derive(Clone, Copy)]
enum Kind {
    Sum,
    Max,
}

impl Kind {
    fn init<T: Element>(self) -> T {
        match self {
            Kind::Sum => T::zero(),
            Kind::Max => T::neg_infinity(),
        }
    }

    #[inline]
    fn combine<T: Element>(self, a: T, b: T) -> T {
        match self {
            Kind::Sum => a + b,
            // NaN-propagating max, so that a NaN is never hidden by a reduction.
            Kind::Max => {
                if a.is_nan() || b.is_nan() {
                    T::nan()
                } else {
                    a.max(b)
                }
            }
        }
    }

    fn fold<T: Element>(self, s: &[T]) -> T {
        match self {
            Kind::Sum => sum_slice(s),
            Kind::Max => s.iter().fold(self.init(), |a, &b| self.combine(a, b)),
        }
    }
}

/// Reduces all of `t`: folds of fixed chunks of [`SUM_CHUNK`] elements, combined in order.
/// The chunks depend on the length alone, so the rounding (and the result) is the same
/// whether they run on the calling thread or on a pool of any size.
fn reduce_all<T: Element>(t: &Tensor<T>, kind: Kind) -> T {
    let c = t.contiguous();
    let s = c.as_slice().expect("contiguous");
    let combine = |a, b| kind.combine(a, b);
    if parallel(s.len()) {
        let parts: Vec<T> = s.par_chunks(SUM_CHUNK).map(|c| kind.fold(c)).collect();
        parts.into_iter().fold(kind.init(), combine)
    } else {
        s.chunks(SUM_CHUNK).map(|c| kind.fold(c)).fold(kind.init(), combine)
    }
}

fn reduce_axis<T: Element>(
    t: &Tensor<T>,
    op: &'static str,
    axis: usize,
    keepdim: bool,
    kind: Kind,
) -> Result<Tensor<T>> {
    t.layout().check_axis(op, axis)?;
    let shape = t.shape();
    let outer = count(&shape[..axis]);
    let n = shape[axis];
    let inner = count(&shape[axis + 1..]);
    let mut out_shape: Dims = shape.into();
    if keepdim {
        out_shape[axis] = 1;
    } else {
        out_shape.remove(axis);
    }
    let c = t.contiguous();
    let src = c.as_slice().expect("contiguous");
    Tensor::try_fill_new(&out_shape, |out| {
        out.fill(kind.init::<T>());
        if inner == 0 {
            return;
        }
        let block = |o: usize, dst: &mut [T]| {
            let x = &src[o * n * inner..(o + 1) * n * inner];
            if inner == 1 {
                dst[0] = kind.fold(x);
            } else {
                for row in x.chunks_exact(inner) {
                    assign_binary(dst, row, &|d, r| kind.combine(d, r));
                }
            }
        };
        if parallel(src.len()) && outer > 1 {
            out.par_chunks_mut(inner).enumerate().for_each(|(o, dst)| block(o, dst));
        } else {
            out.chunks_mut(inner).enumerate().for_each(|(o, dst)| block(o, dst));
        }
    })
}

impl<T: Element> Tensor<T> {
    /// `Σⱼ f(self[…, j], rhs[…, j])`: a fused elementwise map and sum over the last axis,
    /// with no intermediate tensor. Both operands must have the same shape (rank ≥ 1); the
    /// result drops the last axis. Panics, naming both shapes, otherwise. An operand whose
    /// rows are contiguous is read in place wherever its rows lie (a broadcast one, repeating
    /// its rows with stride 0, is not copied out).
    #[track_caller]
    pub fn zip_sum_last<F: Fn(T, T) -> T + Sync>(&self, rhs: &Tensor<T>, f: F) -> Tensor<T> {
        ok(self.try_zip_sum_last(rhs, f))
    }

    /// Fallible [`zip_sum_last`](Self::zip_sum_last).
    pub fn try_zip_sum_last<F: Fn(T, T) -> T + Sync>(&self, rhs: &Tensor<T>, f: F) -> Result<Tensor<T>> {
        if self.shape() != rhs.shape() || self.rank() == 0 {
            return Err(TensorError::ShapeMismatch {
                op: "zip_sum_last",
                lhs: self.shape().to_vec(),
                rhs: rhs.shape().to_vec(),
            });
        }
        let inner = self.shape()[self.rank() - 1];
        let out_shape = &self.shape()[..self.rank() - 1];
        // Rows in place: unit stride along the last axis (or a single element).
        let rows_in_place =
            |t: &Tensor<T>| if inner > 1 && t.layout().inner().1 != 1 { t.contiguous() } else { t.clone() };
        let (a, b) = (rows_in_place(self), rows_in_place(rhs));
        let (sa, sb, la, lb) = (a.storage(), b.storage(), a.layout(), b.layout());
        let one = |r: usize| {
            let (oa, ob) = (la.row_offset(r), lb.row_offset(r));
            sum_zip(&sa[oa..oa + inner], &sb[ob..ob + inner], &f)
        };
        Tensor::try_fill_new(out_shape, |out| {
            if inner == 0 {
                out.fill(T::zero());
            } else if parallel(self.len()) {
                out.par_iter_mut().enumerate().for_each(|(r, o)| *o = one(r));
            } else {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = one(r);
                }
            }
        })
    }

    /// `r` (a one-element result of an all-axes reduction) shaped `[1, 1, …]` with this
    /// tensor's rank when `keepdim`, else as is.
    fn keep_all(&self, r: Tensor<T>, keepdim: bool) -> Tensor<T> {
        if keepdim {
            r.reshape(&vec![1; self.rank()])
        } else {
            r
        }
    }

    /// Sum over all axes; with `keepdim` the result has this tensor's rank (every extent 1).
    pub fn sum_all(&self, keepdim: bool) -> Tensor<T> {
        self.keep_all(self.sum(), keepdim)
    }

    /// Maximum over all axes, optionally keeping them (extent 1).
    pub fn max_all(&self, keepdim: bool) -> Tensor<T> {
        self.keep_all(self.max(), keepdim)
    }

    /// Sum of all elements, as a rank-0 tensor.
    pub fn sum(&self) -> Tensor<T> {
        Tensor::scalar(reduce_all(self, Kind::Sum))
    }

    /// Sum over `axis`; with `keepdim` the axis stays with extent 1.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        ok(self.try_sum_axis(axis, keepdim))
    }

    /// Fallible [`sum_axis`](Self::sum_axis).
    pub fn try_sum_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        reduce_axis(self, "sum_axis", axis, keepdim, Kind::Sum)
    }

    /// Mean of all elements, as a rank-0 tensor (NaN for an empty tensor).
    pub fn mean(&self) -> Tensor<T> {
        let n = T::from_usize(self.len()).unwrap();
        Tensor::scalar(reduce_all(self, Kind::Sum) / n)
    }

    /// Mean over `axis`. Panics when `axis` is out of range.
    #[track_caller]
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        ok(self.try_mean_axis(axis, keepdim))
    }

    /// Fallible [`mean_axis`](Self::mean_axis).
    pub fn try_mean_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        let s = reduce_axis(self, "mean_axis", axis, keepdim, Kind::Sum)?;
        let n = T::from_f64_lossy(self.shape()[axis] as f64);
        Ok(s.mul_scalar(T::one() / n))
    }

    /// Largest element, as a rank-0 tensor (−∞ for an empty tensor; NaN if any is NaN).
    pub fn max(&self) -> Tensor<T> {
        Tensor::scalar(reduce_all(self, Kind::Max))
    }

    /// Largest element along `axis`. Panics when `axis` is out of range.
    #[track_caller]
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        ok(self.try_max_axis(axis, keepdim))
    }

    /// Fallible [`max_axis`](Self::max_axis).
    pub fn try_max_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        reduce_axis(self, "max_axis", axis, keepdim, Kind::Max)
    }

    /// `ln Σ e^x` over all elements, computed stably (shifted by the maximum).
    pub fn logsumexp(&self) -> Tensor<T> {
        let m = reduce_all(self, Kind::Max);
        let shift = if m.is_finite() { m } else { T::zero() };
        let s = reduce_all(&self.map(|x| (x - shift).fast_exp()), Kind::Sum);
        Tensor::scalar(shift + s.ln())
    }

    /// `ln Σ e^x` along `axis`, computed stably. Panics when `axis` is out of range.
    #[track_caller]
    pub fn logsumexp_axis(&self, axis: usize, keepdim: bool) -> Tensor<T> {
        ok(self.try_logsumexp_axis(axis, keepdim))
    }

    /// Fallible [`logsumexp_axis`](Self::logsumexp_axis).
    pub fn try_logsumexp_axis(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        let m = reduce_axis(self, "logsumexp_axis", axis, true, Kind::Max)?.map(|m| {
            if m.is_finite() {
                m
            } else {
                T::zero()
            }
        });
        let s = self.try_zip_with(&m, |x, m| (x - m).fast_exp())?.try_sum_axis(axis, true)?;
        let out = s.try_zip_with(&m, |s, m| m + s.ln())?;
        if keepdim {
            Ok(out)
        } else {
            out.try_squeeze(axis)
        }
    }

    /// Sums `self` down to `shape`, the inverse of broadcasting `shape` up to `self.shape()`
    /// (the backward of a broadcast). Panics if `shape` does not broadcast to `self.shape()`.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        ok(self.try_sum_to(shape))
    }

    /// Fallible [`sum_to`](Self::sum_to).
    pub fn try_sum_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let err =
            || TensorError::ShapeMismatch { op: "sum_to", lhs: self.shape().to_vec(), rhs: shape.to_vec() };
        if shape.len() > self.rank() {
            return Err(err());
        }
        let lead = self.rank() - shape.len();
        let mut t = self.clone();
        for _ in 0..lead {
            t = t.try_sum_axis(0, false)?;
        }
        for (i, &d) in shape.iter().enumerate() {
            if d == t.shape()[i] {
                continue;
            }
            if d != 1 {
                return Err(err());
            }
            t = t.try_sum_axis(i, true)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element `i` of the product added into accumulator `i mod 8` in order, the eight
    /// added as [`tree_sum`] does, then the elements past the last whole eight in order.
    fn reference(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
        let whole = a.len() / 8 * 8;
        let mut acc = [0.0f32; 8];
        for i in 0..whole {
            acc[i % 8] += f(a[i], b[i]);
        }
        (whole..a.len()).fold(tree_sum(&acc), |t, i| t + f(a[i], b[i]))
    }

    #[test]
    fn sum_zip_adds_in_the_order_of_eight_accumulators() {
        let f = |x: f32, t: f32| x.max(0.0) - x * t + crate::fastmath::softplus_tail_f32(x);
        let value = |i: usize| ((i * 7919) % 1013) as f32 / 97.0 - 5.0;
        let (a, b): (Vec<f32>, Vec<f32>) =
            (0..1000).map(|i| (value(i) * 1.37, (value(i + 11) > 0.0) as u8 as f32)).unzip();
        for len in (0..200).chain([255, 256, 257, 511, 999, 1000]) {
            let (got, want) = (sum_zip(&a[..len], &b[..len], &f), reference(&a[..len], &b[..len], f));
            assert_eq!(got.to_bits(), want.to_bits(), "length {len}: {got} against {want}");
        }
    }
}
