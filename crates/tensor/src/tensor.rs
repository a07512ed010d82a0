//! [`Tensor`]: shared storage plus a [`Layout`]; constructors, accessors and zero-copy views.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::kernels;
use crate::layout::{try_contiguous_strides, Layout};
use crate::pool;

/// Elements per block of [`Tensor::randn_blocks`], each drawn from its own generator: a
/// fixed count, so that the values do not depend on the pool.
const RANDN_BLOCK: usize = 1 << 14;

/// An n-dimensional array of `f32` or `f64`.
///
/// Cloning is cheap: clones share storage. Views (`t`, `transpose`, `permute`, `narrow`,
/// `reshape`, `broadcast_to`, `squeeze`, `unsqueeze`) never copy; operations return new,
/// contiguous tensors; in-place operations copy the storage first only if it is shared
/// (copy on write).
///
/// ```
/// use tensor::Tensor;
/// let a = Tensor::<f32>::from_vec(vec![1., 2., 3., 4., 5., 6.], &[2, 3]);
/// let at = a.t(); // a view: no copy
/// assert_eq!(at.shape(), &[3, 2]);
/// assert_eq!(at.to_vec(), vec![1., 4., 2., 5., 3., 6.]);
/// assert_eq!(a.matmul(&at).to_vec(), vec![14., 32., 32., 77.]);
/// ```
#[derive(Clone)]
pub struct Tensor<T: Element> {
    storage: Arc<Vec<T>>,
    layout: Layout,
}

/// Storage this tensor alone holds goes back to the storage pool (`pool.rs`) for the next
/// tensor of its length.
impl<T: Element> Drop for Tensor<T> {
    fn drop(&mut self) {
        pool::give(&mut self.storage);
    }
}

impl<T: Element> Tensor<T> {
    // ---------------------------------------------------------------- construction

    /// A tensor of `shape` from row-major `data`, or an error if the length is wrong.
    pub fn try_from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let layout = Layout::try_contiguous(shape)?;
        let expected = layout.len();
        if data.len() != expected {
            return Err(TensorError::LengthMismatch {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor { storage: Arc::new(data), layout })
    }

    /// A tensor of `shape` from row-major `data`. Panics if the length is wrong.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        ok(Self::try_from_vec(data, shape))
    }

    /// A rank-0 tensor holding `v`.
    pub fn scalar(v: T) -> Self {
        Self::fill_new(&[], |o| o[0] = v)
    }

    /// A tensor of `shape` filled with `v`. Panics when the element count overflows `isize`
    /// (or the memory cannot be had); see [`try_full`](Self::try_full).
    #[track_caller]
    pub fn full(shape: &[usize], v: T) -> Self {
        ok(Self::try_full(shape, v))
    }

    /// A tensor of `shape` filled with `v`, or an error when the element count overflows
    /// `isize` or the memory cannot be had.
    pub fn try_full(shape: &[usize], v: T) -> Result<Self> {
        Self::try_fill_new(shape, |o| o.fill(v))
    }

    /// A tensor of zeros (panics as [`full`](Self::full) does).
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones (panics as [`full`](Self::full) does).
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// `[0, 1, …, n-1]` (each index rounded to the nearest `T`).
    #[track_caller]
    pub fn arange(n: usize) -> Self {
        Self::fill_new(&[n], |o| o.iter_mut().enumerate().for_each(|(i, x)| *x = T::from_f64_lossy(i as f64)))
    }

    /// The `n×n` identity matrix.
    #[track_caller]
    pub fn eye(n: usize) -> Self {
        Self::fill_new(&[n, n], |v| {
            v.fill(T::zero());
            v.iter_mut().step_by(n + 1).for_each(|x| *x = T::one());
        })
    }

    /// Independent standard normal draws.
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], rng: &mut R) -> Self
    where
        StandardNormal: Distribution<T>,
    {
        Self::fill_new(shape, |o| o.iter_mut().for_each(|x| *x = StandardNormal.sample(rng)))
    }

    /// Independent standard normal draws made on the pool's threads: the elements in blocks
    /// of 16,384, each block drawn from a `StdRng` that `rng` seeds, block by block in
    /// order. The values depend on `rng` and the element count
    /// alone, not on the pool; they differ from [`randn`](Self::randn)'s on the same `rng`.
    /// For draws by the hundred thousand (a k = 5000 evaluation's noise), which one thread
    /// makes at about 5 ns each (`cargo bench --bench backward -- eval_noise`).
    pub fn randn_blocks<R: Rng + ?Sized>(shape: &[usize], rng: &mut R) -> Self
    where
        StandardNormal: Distribution<T>,
    {
        use rand::SeedableRng;
        use rayon::prelude::*;
        Self::fill_new(shape, |o| {
            let mut rngs: Vec<_> =
                (0..o.len().div_ceil(RANDN_BLOCK)).map(|_| rand::rngs::StdRng::from_rng(rng)).collect();
            let draw = |(block, r): (&mut [T], &mut rand::rngs::StdRng)| {
                block.iter_mut().for_each(|x| *x = StandardNormal.sample(r))
            };
            if kernels::parallel(o.len()) {
                o.par_chunks_mut(RANDN_BLOCK).zip(rngs.par_iter_mut()).for_each(draw);
            } else {
                o.chunks_mut(RANDN_BLOCK).zip(rngs.iter_mut()).for_each(draw);
            }
        })
    }

    /// Independent draws, uniform on `[low, high)`. Panics unless `low < high`, both finite.
    #[track_caller]
    pub fn rand_uniform<R: Rng + ?Sized>(shape: &[usize], low: T, high: T, rng: &mut R) -> Self
    where
        T: rand_distr::uniform::SampleUniform,
    {
        let dist = match Uniform::new(low, high) {
            Ok(d) => d,
            Err(e) => crate::error::fail(TensorError::Invalid {
                op: "rand_uniform",
                msg: format!("bad range [{low}, {high}): {e}"),
            }),
        };
        Self::fill_new(shape, |o| o.iter_mut().for_each(|x| *x = dist.sample(rng)))
    }

    /// A tensor over `data` with `layout`. Panics if the layout reaches past the data.
    #[track_caller]
    pub fn from_parts(data: Vec<T>, layout: Layout) -> Self {
        ok(Self::try_from_parts(data, layout))
    }

    /// A tensor over `data` with `layout`, or an error if the layout reaches past the data.
    pub fn try_from_parts(data: Vec<T>, layout: Layout) -> Result<Self> {
        Self::try_from_shared(Arc::new(data), layout)
    }

    /// A new contiguous tensor of `shape` whose elements start as zeros and are then
    /// written by `fill`, which is handed them as one row-major slice. Panics when the
    /// element count overflows `isize` (or the memory cannot be had).
    #[track_caller]
    pub fn from_fill(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Self {
        Self::fill_new(shape, |o| {
            o.fill(T::zero());
            fill(o)
        })
    }

    /// [`from_fill`](Self::from_fill) for the crate's kernels, which write every element:
    /// the buffer comes from the storage pool (`pool.rs`) as its last owner left it, so no
    /// heap allocation and no pass of zeros is made once a buffer of that length has been
    /// given back. Panics as [`from_fill`](Self::from_fill) does.
    #[track_caller]
    pub(crate) fn fill_new(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Self {
        ok(Self::try_fill_new(shape, fill))
    }

    /// Fallible [`fill_new`](Self::fill_new).
    pub(crate) fn try_fill_new(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Result<Self> {
        let layout = Layout::try_contiguous(shape)?;
        let mut storage = pool::take(layout.len())?;
        fill(Arc::get_mut(&mut storage).expect("taken storage has one owner"));
        Ok(Tensor { storage, layout })
    }

    /// A tensor over shared storage. Panics if the layout reaches past the data.
    #[track_caller]
    pub fn from_shared(storage: Arc<Vec<T>>, layout: Layout) -> Self {
        ok(Self::try_from_shared(storage, layout))
    }

    /// A tensor over shared storage, or an error if the layout reaches past the data.
    pub fn try_from_shared(storage: Arc<Vec<T>>, layout: Layout) -> Result<Self> {
        if layout.min_storage_len() > storage.len() {
            return Err(TensorError::Invalid {
                op: "from_shared",
                msg: format!("layout {layout:?} reaches past storage of {} elements", storage.len()),
            });
        }
        Ok(Tensor { storage, layout })
    }

    // ---------------------------------------------------------------- accessors

    /// The extent of each axis.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// Storage steps per axis.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The whole storage, which may hold elements outside this view (the crate's kernels
    /// read through it with the layout).
    pub(crate) fn storage(&self) -> &[T] {
        &self.storage
    }

    /// True when `self` and `other` are views of the same storage (writing through one,
    /// after a copy on write, never changes the other).
    pub fn shares_storage(&self, other: &Tensor<T>) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// True when the elements are dense and row-major.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements as a row-major slice, when the tensor is contiguous.
    pub fn as_slice(&self) -> Option<&[T]> {
        self.is_contiguous().then(|| &self.storage[self.layout.offset()..self.layout.offset() + self.len()])
    }

    /// The elements as a mutable row-major slice, when the tensor is contiguous. Copies the
    /// storage first if it is shared with another tensor.
    pub fn as_mut_slice(&mut self) -> Option<&mut [T]> {
        if !self.is_contiguous() {
            return None;
        }
        if Arc::get_mut(&mut self.storage).is_none() {
            // Copy on write, into a pooled buffer (the shared one is left to its other owners).
            let mut own = pool::take_or_fail(self.storage.len());
            Arc::get_mut(&mut own).expect("taken storage has one owner").copy_from_slice(&self.storage);
            self.storage = own;
        }
        let (off, len) = (self.layout.offset(), self.len());
        let storage = Arc::get_mut(&mut self.storage).expect("made unique above");
        Some(&mut storage[off..off + len])
    }

    /// A contiguous tensor with the same elements: `self` (shared) when already contiguous,
    /// else a copy.
    pub fn contiguous(&self) -> Self {
        if self.is_contiguous() {
            self.clone()
        } else {
            kernels::map(self, |x| x)
        }
    }

    /// Makes `self` contiguous with storage it alone owns, then returns the elements.
    pub fn make_mut_slice(&mut self) -> &mut [T] {
        if !self.is_contiguous() {
            *self = kernels::map(self, |x| x);
        }
        self.as_mut_slice().expect("contiguous")
    }

    /// The element at `index`, or `None` when out of range.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.layout.index_of(index).map(|i| self.storage[i])
    }

    /// The only element of a one-element tensor (of any rank). Panics otherwise.
    #[track_caller]
    pub fn item(&self) -> T {
        ok(self.try_item())
    }

    /// Fallible [`item`](Self::item).
    pub fn try_item(&self) -> Result<T> {
        if self.len() != 1 {
            return Err(TensorError::Invalid {
                op: "item",
                msg: format!("tensor of shape {:?} has {} elements, not 1", self.shape(), self.len()),
            });
        }
        Ok(self.storage[self.layout.offset()])
    }

    /// The elements in row-major order, copied into a new `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        match self.as_slice() {
            Some(s) => s.to_vec(),
            None => kernels::map(self, |x| x).into_vec(),
        }
    }

    /// The elements in row-major order; avoids the copy when `self` is contiguous, spans its
    /// whole storage and owns it alone.
    pub fn into_vec(self) -> Vec<T> {
        if self.is_contiguous() && self.layout.offset() == 0 && self.len() == self.storage.len() {
            let mut this = self;
            let storage = std::mem::take(&mut this.storage);
            Arc::try_unwrap(storage).unwrap_or_else(|arc| (*arc).clone())
        } else {
            self.to_vec()
        }
    }

    /// A new contiguous tensor of the rows (positions of axis 0) at `indices`, in that order
    /// (a gather; rows may repeat). Panics on an index out of range or a rank-0 tensor.
    #[track_caller]
    pub fn select_rows(&self, indices: &[usize]) -> Tensor<T> {
        ok(self.try_select_rows(indices))
    }

    /// Fallible [`select_rows`](Self::select_rows).
    pub fn try_select_rows(&self, indices: &[usize]) -> Result<Tensor<T>> {
        let rows = self.shape().first().copied().unwrap_or(0);
        if let Some(bad) = indices.iter().find(|&&i| i >= rows).or((self.rank() == 0).then_some(&0)) {
            return Err(TensorError::Invalid {
                op: "select_rows",
                msg: format!("index {bad} out of range for shape {:?}", self.shape()),
            });
        }
        let c = self.contiguous();
        let rows = c.as_slice().expect("contiguous");
        let width = crate::layout::count(&self.shape()[1..]);
        let mut shape = self.shape().to_vec();
        shape[0] = indices.len();
        Tensor::try_fill_new(&shape, |out| {
            for (o, &i) in out.chunks_exact_mut(width.max(1)).zip(indices) {
                o.copy_from_slice(&rows[i * width..(i + 1) * width]);
            }
        })
    }

    /// Converts every element to another precision.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let v = self.to_vec().into_iter().map(|x| U::from_f64_lossy(x.to_f64_lossless())).collect();
        Tensor::from_vec(v, self.shape())
    }

    // ---------------------------------------------------------------- views

    /// A view of the same storage. Every view's elements are elements of `self`, so the
    /// layout still fits the storage.
    fn with_layout(&self, layout: Layout) -> Self {
        debug_assert!(layout.min_storage_len() <= self.storage.len());
        Tensor { storage: Arc::clone(&self.storage), layout }
    }

    /// The transpose of the last two axes (a view). Panics below rank 2.
    #[track_caller]
    pub fn t(&self) -> Self {
        ok(self.try_t())
    }

    /// Fallible [`t`](Self::t).
    pub fn try_t(&self) -> Result<Self> {
        let r = self.rank();
        if r < 2 {
            return Err(TensorError::Invalid {
                op: "t",
                msg: format!("needs rank 2 or more, got shape {:?}", self.shape()),
            });
        }
        self.try_transpose(r - 2, r - 1)
    }

    /// Swaps axes `a` and `b` (a view).
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Self {
        ok(self.try_transpose(a, b))
    }

    /// Swaps axes `a` and `b` (a view), or an error for an axis out of range.
    pub fn try_transpose(&self, a: usize, b: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Reorders axes: axis `i` of the result is axis `perm[i]` of `self` (a view).
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Self {
        ok(self.try_permute(perm))
    }

    /// Fallible [`permute`](Self::permute).
    pub fn try_permute(&self, perm: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// Positions `start..start+len` of `axis` (a view).
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Self {
        ok(self.try_narrow(axis, start, len))
    }

    /// Fallible [`narrow`](Self::narrow).
    pub fn try_narrow(&self, axis: usize, start: usize, len: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.narrow(axis, start, len)?))
    }

    /// The same elements in a new shape (a view). Panics unless `self` is contiguous and the
    /// element counts agree; call [`contiguous`](Self::contiguous) first to allow a copy.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Self {
        ok(self.try_reshape(shape))
    }

    /// Fallible [`reshape`](Self::reshape).
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Self> {
        let n = crate::layout::checked_len("reshape", shape)?;
        if n != self.len() {
            return Err(TensorError::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        if !self.is_contiguous() {
            return Err(TensorError::Invalid {
                op: "reshape",
                msg: format!(
                    "a view of shape {:?} with strides {:?} is not contiguous; call contiguous() first",
                    self.shape(),
                    self.strides()
                ),
            });
        }
        Ok(self.with_layout(Layout::try_new(shape, &try_contiguous_strides(shape)?, self.layout.offset())?))
    }

    /// Repeats axes of extent 1, and prepends axes, to reach `shape` (a view, stride 0).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Self {
        ok(self.try_broadcast_to(shape))
    }

    /// Fallible [`broadcast_to`](Self::broadcast_to).
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.broadcast_to(shape)?))
    }

    /// Inserts an axis of extent 1 before `axis` (a view). Panics when `axis` is beyond
    /// the rank.
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Self {
        ok(self.try_unsqueeze(axis))
    }

    /// Fallible [`unsqueeze`](Self::unsqueeze).
    pub fn try_unsqueeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.unsqueeze(axis)?))
    }

    /// Removes `axis`, which must have extent 1 (a view). Panics otherwise.
    #[track_caller]
    pub fn squeeze(&self, axis: usize) -> Self {
        ok(self.try_squeeze(axis))
    }

    /// Fallible [`squeeze`](Self::squeeze).
    pub fn try_squeeze(&self, axis: usize) -> Result<Self> {
        Ok(self.with_layout(self.layout.squeeze(axis)?))
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 32;
        let v = self.to_vec();
        write!(f, "Tensor<{}>{:?} ", T::DTYPE, self.shape())?;
        if v.len() <= MAX {
            write!(f, "{v:?}")
        } else {
            write!(f, "{:?} …", &v[..MAX])
        }
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    /// Equal shapes and equal elements (views compare by value).
    fn eq(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.to_vec() == other.to_vec()
    }
}
