//! Shapes, strides and offsets: how a tensor's elements sit in its storage.

use smallvec::SmallVec;

use crate::error::{ok, Result, TensorError};

/// Dimensions or strides, inline up to rank 4.
pub type Dims = SmallVec<[usize; 4]>;

/// Where the elements of a tensor live in its storage: element `[i0, i1, …]` is at
/// `offset + i0*strides[0] + i1*strides[1] + …`. A stride of 0 repeats an element
/// (broadcasting).
///
/// Every `Layout` is valid, whoever made it: its element count, every stride, the offset
/// and the storage index of its last element all fit `isize` (what pointer offsets and
/// allocations need), so no index computed from it wraps. The constructors check this with
/// checked arithmetic ([`try_new`](Self::try_new), [`try_contiguous`](Self::try_contiguous)),
/// and every view of a valid layout is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Dims,
    strides: Dims,
    offset: usize,
}

/// The largest element count, stride, offset or storage index a layout may hold.
const MAX_INDEX: usize = isize::MAX as usize;

fn too_large(op: &'static str, shape: &[usize]) -> TensorError {
    TensorError::Invalid { op, msg: format!("the element count of shape {shape:?} overflows isize") }
}

/// The number of elements of `shape`, or an error naming `op` when it overflows `isize`.
pub fn checked_len(op: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_INDEX)
        .ok_or_else(|| too_large(op, shape))
}

/// The number of elements of axes `dims` of a valid layout: exact when there are any (a
/// sub-shape's count is at most the whole count), and 0, without multiplying the other
/// extents (whose product may not fit), when an extent is 0.
pub(crate) fn count(dims: &[usize]) -> usize {
    if dims.contains(&0) {
        return 0;
    }
    dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}

/// Row-major (C order) strides of `shape`, or an error when its element count overflows
/// `isize`.
pub fn try_contiguous_strides(shape: &[usize]) -> Result<Dims> {
    checked_len("contiguous", shape)?;
    let mut strides: Dims = SmallVec::from_elem(0, shape.len());
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        // Exact when there are elements (a suffix product is at most the count); a shape
        // without elements reads none, and its strides are only kept within `isize`.
        acc = acc.saturating_mul(d).min(MAX_INDEX);
    }
    Ok(strides)
}

/// Row-major (C order) strides of `shape`. Panics when its element count overflows `isize`.
#[track_caller]
pub fn contiguous_strides(shape: &[usize]) -> Dims {
    ok(try_contiguous_strides(shape))
}

/// The numpy broadcast of two shapes: aligned from the right, each pair equal or one of them 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Dims> {
    let rank = a.len().max(b.len());
    let mut out: Dims = SmallVec::from_elem(0, rank);
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::ShapeMismatch { op, lhs: a.to_vec(), rhs: b.to_vec() });
        };
    }
    Ok(out)
}

impl Layout {
    /// A row-major layout of `shape` at offset 0, or an error when its element count
    /// overflows `isize`.
    pub fn try_contiguous(shape: &[usize]) -> Result<Self> {
        Ok(Layout { shape: shape.into(), strides: try_contiguous_strides(shape)?, offset: 0 })
    }

    /// A row-major layout of `shape` at offset 0. Panics when its element count overflows
    /// `isize`.
    #[track_caller]
    pub fn contiguous(shape: &[usize]) -> Self {
        ok(Self::try_contiguous(shape))
    }

    /// A layout from its parts, checked with checked arithmetic: as many strides as axes,
    /// and an element count, strides, offset and last element's storage index
    /// (`offset + Σ (shape[i] − 1)·strides[i]`) that fit `isize`. Whether a storage holds
    /// it is checked where the two meet
    /// ([`Tensor::try_from_shared`](crate::Tensor::try_from_shared)).
    pub fn try_new(shape: &[usize], strides: &[usize], offset: usize) -> Result<Self> {
        let bad = |msg: String| TensorError::Invalid { op: "layout", msg };
        if shape.len() != strides.len() {
            return Err(bad(format!("{} strides {strides:?} for shape {shape:?}", strides.len())));
        }
        let len = checked_len("layout", shape)?;
        if offset > MAX_INDEX || strides.iter().any(|&s| s > MAX_INDEX) {
            return Err(bad(format!("strides {strides:?} or offset {offset} overflow isize")));
        }
        if len > 0 {
            shape
                .iter()
                .zip(strides)
                .try_fold(offset, |end, (&d, &s)| (d - 1).checked_mul(s).and_then(|r| end.checked_add(r)))
                .filter(|&end| end <= MAX_INDEX)
                .ok_or_else(|| {
                    bad(format!(
                        "shape {shape:?} with strides {strides:?} at offset {offset} reaches past isize"
                    ))
                })?;
        }
        Ok(Layout { shape: shape.into(), strides: strides.into(), offset })
    }

    /// A layout from its parts. Panics, saying why, unless [`try_new`](Self::try_new)
    /// accepts them.
    #[track_caller]
    pub fn new(shape: &[usize], strides: &[usize], offset: usize) -> Self {
        ok(Self::try_new(shape, strides, offset))
    }

    /// The extent of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The step in storage elements for each axis.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Storage index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        count(&self.shape)
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the elements are row-major and dense (axes of extent 1 may have any stride;
    /// a layout without elements is contiguous).
    pub fn is_contiguous(&self) -> bool {
        if self.is_empty() {
            return true;
        }
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Storage index of the element at `index` (`index.len()` must equal the rank).
    pub fn index_of(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.rank() || index.iter().zip(&self.shape).any(|(&i, &d)| i >= d) {
            return None;
        }
        Some(self.offset + index.iter().zip(&self.strides).map(|(i, s)| i * s).sum::<usize>())
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of `self`.
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let mut seen: Dims = SmallVec::from_elem(0, self.rank());
        if perm.len() != self.rank() {
            return Err(TensorError::Invalid {
                op: "permute",
                msg: format!("permutation {perm:?} does not fit shape {:?}", self.shape()),
            });
        }
        for &p in perm {
            if p >= self.rank() || seen[p] == 1 {
                return Err(TensorError::Invalid {
                    op: "permute",
                    msg: format!("{perm:?} is not a permutation of 0..{}", self.rank()),
                });
            }
            seen[p] = 1;
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Keeps `len` positions of `axis` starting at `start`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Layout> {
        self.check_axis("narrow", axis)?;
        if start.checked_add(len).is_none_or(|end| end > self.shape[axis]) {
            return Err(TensorError::Invalid {
                op: "narrow",
                msg: format!(
                    "range {start}..{} is out of bounds for axis {axis} of shape {:?}",
                    start.saturating_add(len),
                    self.shape()
                ),
            });
        }
        let mut l = self.clone();
        // Only a view with elements moves: its first element is one of `self`'s, so the
        // offset stays inside the storage (an empty view keeps the offset it has).
        if len > 0 && !self.is_empty() {
            l.offset += start * self.strides[axis];
        }
        l.shape[axis] = len;
        Ok(l)
    }

    /// Repeats axes of extent 1 (and prepends new axes) to reach `shape`, with stride 0.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || TensorError::ShapeMismatch {
            op: "broadcast_to",
            lhs: self.shape.to_vec(),
            rhs: shape.to_vec(),
        };
        if shape.len() < self.rank() {
            return Err(err());
        }
        let lead = shape.len() - self.rank();
        let mut strides: Dims = SmallVec::from_elem(0, shape.len());
        for (i, &d) in shape.iter().enumerate().skip(lead) {
            let own = self.shape[i - lead];
            if own == d {
                strides[i] = self.strides[i - lead];
            } else if own != 1 {
                return Err(err());
            }
        }
        checked_len("broadcast_to", shape)?;
        Ok(Layout { shape: shape.into(), strides, offset: self.offset })
    }

    /// Inserts an axis of extent 1 at `axis` (which may equal the rank).
    pub fn unsqueeze(&self, axis: usize) -> Result<Layout> {
        if axis > self.rank() {
            return Err(TensorError::AxisOutOfRange { op: "unsqueeze", axis, shape: self.shape.to_vec() });
        }
        let mut l = self.clone();
        // Any stride serves an axis of extent 1: this one keeps a contiguous layout
        // contiguous, or is 0 where it would not fit `isize`.
        let stride = match self.shape.get(axis) {
            Some(&d) => self.strides[axis].checked_mul(d).filter(|&s| s <= MAX_INDEX).unwrap_or(0),
            None => 1,
        };
        l.shape.insert(axis, 1);
        l.strides.insert(axis, stride);
        Ok(l)
    }

    /// Removes an axis of extent 1.
    pub fn squeeze(&self, axis: usize) -> Result<Layout> {
        self.check_axis("squeeze", axis)?;
        if self.shape[axis] != 1 {
            return Err(TensorError::Invalid {
                op: "squeeze",
                msg: format!("axis {axis} of shape {:?} is not of extent 1", self.shape()),
            });
        }
        let mut l = self.clone();
        l.shape.remove(axis);
        l.strides.remove(axis);
        Ok(l)
    }

    /// An error unless `axis < rank`.
    pub fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis < self.rank() {
            Ok(())
        } else {
            Err(TensorError::AxisOutOfRange { op, axis, shape: self.shape.to_vec() })
        }
    }

    /// Storage offset of row `row` when the tensor is seen as rows of its last axis
    /// (rank 0 has one row of one element).
    #[inline]
    pub(crate) fn row_offset(&self, mut row: usize) -> usize {
        let mut off = self.offset;
        let lead = self.rank().saturating_sub(1);
        for i in (0..lead).rev() {
            let d = self.shape[i];
            off += (row % d) * self.strides[i];
            row /= d;
        }
        off
    }

    /// Length and stride of the last axis (1 and 0 at rank 0).
    #[inline]
    pub(crate) fn inner(&self) -> (usize, usize) {
        match self.rank() {
            0 => (1, 0),
            r => (self.shape[r - 1], self.strides[r - 1]),
        }
    }

    /// The smallest storage length that holds every element: one past the last element's
    /// index, or the offset for a layout without elements. It cannot overflow: a valid
    /// layout's indices fit `isize`.
    pub fn min_storage_len(&self) -> usize {
        if self.is_empty() {
            return self.offset;
        }
        self.offset + self.shape.iter().zip(&self.strides).map(|(d, s)| (d - 1) * s).sum::<usize>() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 5], &[4, 1]).unwrap().as_slice(), &[3, 4, 5]);
        assert_eq!(broadcast_shapes("t", &[], &[2]).unwrap().as_slice(), &[2]);
        assert_eq!(broadcast_shapes("t", &[0, 1], &[1, 3]).unwrap().as_slice(), &[0, 3]);
        assert!(broadcast_shapes("t", &[2, 3], &[3, 2]).is_err());
    }

    #[test]
    fn contiguity_ignores_unit_axes() {
        let l = Layout::contiguous(&[2, 1, 3]);
        assert!(l.is_contiguous());
        assert!(!l.transpose(0, 2).unwrap().is_contiguous());
        assert!(l.unsqueeze(3).unwrap().is_contiguous());
        assert!(!l.broadcast_to(&[2, 4, 3]).unwrap().is_contiguous());
    }

    #[test]
    fn contiguous_strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
        assert_eq!(contiguous_strides(&[0, 3]).as_slice(), &[3, 1]);
        assert!(contiguous_strides(&[]).is_empty());
        assert!(try_contiguous_strides(&[MAX_INDEX, 2]).is_err());
    }

    #[test]
    fn try_new_accepts_exactly_the_layouts_whose_indices_fit_isize() {
        // The last element's index is `offset + Σ (shape[i] − 1)·strides[i]`.
        assert!(Layout::try_new(&[2], &[1], MAX_INDEX - 1).is_ok());
        assert!(Layout::try_new(&[2], &[1], MAX_INDEX).is_err());
        assert!(Layout::try_new(&[3], &[MAX_INDEX / 2], 0).is_ok());
        assert!(Layout::try_new(&[3], &[MAX_INDEX / 2 + 1], 0).is_err());
        // A stride or an offset past `isize` is refused even where no element reaches it.
        assert!(Layout::try_new(&[1], &[MAX_INDEX], 0).is_ok());
        assert!(Layout::try_new(&[1], &[MAX_INDEX + 1], 0).is_err());
        assert!(Layout::try_new(&[0], &[1], MAX_INDEX).is_ok());
        assert!(Layout::try_new(&[0], &[1], MAX_INDEX + 1).is_err());
        assert!(Layout::try_new(&[2, 3], &[3], 0).is_err());
    }

    #[test]
    fn index_of_refuses_indices_outside_the_shape() {
        let l = Layout::contiguous(&[4, 5]);
        assert_eq!(l.index_of(&[3, 4]), Some(19));
        assert_eq!(l.index_of(&[4, 0]), None);
        assert_eq!(l.index_of(&[0, 5]), None);
        assert_eq!(l.index_of(&[1]), None);
        assert_eq!(l.index_of(&[1, 2, 0]), None);
    }

    #[test]
    fn permute_takes_only_permutations() {
        let l = Layout::contiguous(&[4, 5]);
        let p = l.permute(&[1, 0]).unwrap();
        assert_eq!((p.shape(), p.strides()), (&[5, 4][..], &[1, 5][..]));
        for bad in [&[0, 0][..], &[1, 1], &[0, 2], &[1], &[0, 1, 2]] {
            assert!(l.permute(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsqueeze_gives_the_new_axis_the_stride_of_the_axes_it_precedes() {
        let l = Layout::contiguous(&[2, 3]);
        assert_eq!(l.unsqueeze(0).unwrap().strides(), &[6, 3, 1]);
        assert_eq!(l.unsqueeze(1).unwrap().strides(), &[3, 3, 1]);
        assert_eq!(l.unsqueeze(2).unwrap().strides(), &[3, 1, 1]);
        // Where that stride would pass `isize`, the axis of extent 1 gets 0.
        let wide = Layout::new(&[3], &[MAX_INDEX / 2], 0);
        assert_eq!(wide.unsqueeze(0).unwrap().strides(), &[0, MAX_INDEX / 2]);
        assert!(l.unsqueeze(3).is_err());
    }

    #[test]
    fn narrow_checks_bounds() {
        let l = Layout::contiguous(&[4, 5]);
        let n = l.narrow(1, 2, 3).unwrap();
        assert_eq!(n.offset(), 2);
        assert_eq!(n.index_of(&[1, 0]), Some(7));
        assert!(l.narrow(1, 3, 3).is_err());
        assert!(l.narrow(2, 0, 1).is_err());
    }
}
