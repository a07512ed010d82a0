//! [`Tensor`]: shared storage plus a [`Layout`]; constructors, accessors and zero-copy views.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::kernels;
use crate::layout::{contiguous_strides, Layout};
use crate::pool;

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
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(TensorError::LengthMismatch {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Self::from_parts(data, Layout::contiguous(shape)))
    }

    /// A tensor of `shape` from row-major `data`. Panics if the length is wrong.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        ok(Self::try_from_vec(data, shape))
    }

    /// A rank-0 tensor holding `v`.
    pub fn scalar(v: T) -> Self {
        Self::from_fill(&[], |o| o[0] = v)
    }

    /// A tensor of `shape` filled with `v`.
    pub fn full(shape: &[usize], v: T) -> Self {
        Self::from_fill(shape, |o| o.fill(v))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// `[0, 1, …, n-1]`.
    pub fn arange(n: usize) -> Self {
        Self::from_parts((0..n).map(|i| T::from_usize(i).unwrap()).collect(), Layout::contiguous(&[n]))
    }

    /// The `n×n` identity matrix.
    pub fn eye(n: usize) -> Self {
        let mut v = vec![T::zero(); n * n];
        for i in 0..n {
            v[i * n + i] = T::one();
        }
        Self::from_parts(v, Layout::contiguous(&[n, n]))
    }

    /// Independent standard normal draws.
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], rng: &mut R) -> Self
    where
        StandardNormal: Distribution<T>,
    {
        Self::from_fill(shape, |o| o.iter_mut().for_each(|x| *x = StandardNormal.sample(rng)))
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
        Self::from_fill(shape, |o| o.iter_mut().for_each(|x| *x = dist.sample(rng)))
    }

    /// A tensor over `data` with `layout`. Panics if the layout reaches past the data.
    #[track_caller]
    pub fn from_parts(data: Vec<T>, layout: Layout) -> Self {
        Self::from_shared(Arc::new(data), layout)
    }

    /// A new contiguous tensor of `shape` whose elements `fill` writes, every one of them.
    /// The buffer it is handed is row-major and comes from the storage pool (`pool.rs`), so
    /// no heap allocation is made once a buffer of that length has been given back; it
    /// holds whatever values its last owner left until `fill` overwrites them.
    pub fn from_fill(shape: &[usize], fill: impl FnOnce(&mut [T])) -> Self {
        let mut storage = pool::take(shape.iter().product());
        fill(Arc::get_mut(&mut storage).expect("taken storage has one owner"));
        Tensor { storage, layout: Layout::contiguous(shape) }
    }

    /// A tensor over shared storage. Panics if the layout reaches past the data.
    #[track_caller]
    pub fn from_shared(storage: Arc<Vec<T>>, layout: Layout) -> Self {
        assert!(
            layout.min_storage_len() <= storage.len(),
            "from_parts: layout {:?} reaches past storage of {} elements",
            layout,
            storage.len()
        );
        Tensor { storage, layout }
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

    /// The whole shared storage, which may hold elements outside this view.
    pub fn storage(&self) -> &Arc<Vec<T>> {
        &self.storage
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
            let mut own = pool::take(self.storage.len());
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
        if self.len() != 1 {
            crate::error::fail(TensorError::Invalid {
                op: "item",
                msg: format!("tensor of shape {:?} has {} elements, not 1", self.shape(), self.len()),
            });
        }
        self.storage[self.layout.offset()]
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
        if self.rank() == 0 || indices.iter().any(|&i| i >= self.shape()[0]) {
            crate::error::fail(TensorError::Invalid {
                op: "select_rows",
                msg: format!("indices {indices:?} out of range for shape {:?}", self.shape()),
            });
        }
        let c = self.contiguous();
        let rows = c.as_slice().expect("contiguous");
        let width: usize = self.shape()[1..].iter().product();
        let data = indices.iter().flat_map(|&i| rows[i * width..(i + 1) * width].iter().copied()).collect();
        let mut shape = self.shape().to_vec();
        shape[0] = indices.len();
        Tensor::from_vec(data, &shape)
    }

    /// Converts every element to another precision.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let v = self.to_vec().into_iter().map(|x| U::from_f64_lossy(x.to_f64_lossless())).collect();
        Tensor::from_vec(v, self.shape())
    }

    // ---------------------------------------------------------------- views

    fn with_layout(&self, layout: Layout) -> Self {
        Tensor { storage: Arc::clone(&self.storage), layout }
    }

    /// The transpose of the last two axes (a view). Panics below rank 2.
    #[track_caller]
    pub fn t(&self) -> Self {
        let r = self.rank();
        if r < 2 {
            crate::error::fail(TensorError::Invalid {
                op: "t",
                msg: format!("needs rank 2 or more, got shape {:?}", self.shape()),
            });
        }
        self.transpose(r - 2, r - 1)
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
        let n: usize = shape.iter().product();
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
        Ok(self.with_layout(Layout::new(shape.into(), contiguous_strides(shape), self.layout.offset())))
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

    /// Inserts an axis of extent 1 before `axis` (a view).
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Self {
        ok(self.layout.unsqueeze(axis).map(|l| self.with_layout(l)))
    }

    /// Removes `axis`, which must have extent 1 (a view).
    #[track_caller]
    pub fn squeeze(&self, axis: usize) -> Self {
        ok(self.layout.squeeze(axis).map(|l| self.with_layout(l)))
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
