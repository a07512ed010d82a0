//! Shapes, strides and offsets: how a tensor's elements sit in its storage.

use smallvec::SmallVec;

use crate::error::{Result, TensorError};

/// Dimensions or strides, inline up to rank 4.
pub type Dims = SmallVec<[usize; 4]>;

/// Where the elements of a tensor live in its storage: element `[i0, i1, …]` is at
/// `offset + i0*strides[0] + i1*strides[1] + …`. A stride of 0 repeats an element
/// (broadcasting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Dims,
    strides: Dims,
    offset: usize,
}

/// Row-major (C order) strides of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Dims {
    let mut strides: Dims = SmallVec::from_elem(0, shape.len());
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
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
    /// A row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout { shape: shape.into(), strides: contiguous_strides(shape), offset: 0 }
    }

    /// A layout from its parts (not checked against any storage).
    pub fn new(shape: Dims, strides: Dims, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout { shape, strides, offset }
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
        self.shape.iter().product()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the elements are row-major and dense (axes of extent 1 may have any stride).
    pub fn is_contiguous(&self) -> bool {
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
        if len > 0 {
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
        Ok(Layout { shape: shape.into(), strides, offset: self.offset })
    }

    /// Inserts an axis of extent 1 at `axis` (which may equal the rank).
    pub fn unsqueeze(&self, axis: usize) -> Result<Layout> {
        if axis > self.rank() {
            return Err(TensorError::AxisOutOfRange { op: "unsqueeze", axis, shape: self.shape.to_vec() });
        }
        let mut l = self.clone();
        let stride = if axis < self.rank() { self.strides[axis] * self.shape[axis] } else { 1 };
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

    /// The smallest storage length that holds every element.
    pub fn min_storage_len(&self) -> usize {
        if self.is_empty() {
            return 0;
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
    fn narrow_checks_bounds() {
        let l = Layout::contiguous(&[4, 5]);
        let n = l.narrow(1, 2, 3).unwrap();
        assert_eq!(n.offset(), 2);
        assert_eq!(n.index_of(&[1, 0]), Some(7));
        assert!(l.narrow(1, 3, 3).is_err());
        assert!(l.narrow(2, 0, 1).is_err());
    }
}
