//! A slice along one axis (a view).

use tensor::{Dims, Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Positions `start..start+len` of `axis` (a view). Panics when out of range.
    #[track_caller]
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Var<'g, T> {
        tensor::ok(self.try_narrow(axis, start, len))
    }

    /// Fallible [`narrow`](Self::narrow).
    pub fn try_narrow(self, axis: usize, start: usize, len: usize) -> Result<Var<'g, T>> {
        let v = self.value().try_narrow(axis, start, len)?;
        Ok(self.record1(v, Op::Narrow { x: self.id, axis, start }))
    }
}

/// Writes `src` (the shape of `dst` except along `axis`, where it has `src.shape()[axis]`
/// positions) into positions `start..` of `axis` of the row-major buffer `dst` of `shape`.
pub(crate) fn write_slab<T: Element>(
    dst: &mut [T],
    shape: &[usize],
    axis: usize,
    start: usize,
    src: &Tensor<T>,
) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let (n, len) = (shape[axis], src.shape()[axis]);
    let src = src.contiguous();
    let src = src.as_slice().expect("contiguous");
    if inner * len == 0 {
        return;
    }
    for (o, chunk) in src.chunks_exact(len * inner).enumerate().take(outer) {
        let at = (o * n + start) * inner;
        dst[at..at + len * inner].copy_from_slice(chunk);
    }
}

/// The gradient is the output gradient in the kept positions and zero elsewhere.
pub(crate) fn backward<T: Element>(
    bp: &mut Backprop<'_, T>,
    x: usize,
    axis: usize,
    start: usize,
    g: Tensor<T>,
) {
    let shape: Dims = bp.value(x).shape().into();
    let mut full = Tensor::zeros(&shape);
    write_slab(full.as_mut_slice().expect("a new tensor is contiguous"), &shape, axis, start, &g);
    bp.accumulate(x, full);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_narrow() {
        check(|_, x| x[0].narrow(1, 1, 2), &[&[3, 4]], 0.0);
        check(|_, x| x[0].narrow(0, 0, 2) * x[0].narrow(0, 1, 2), &[&[3, 4]], 0.0);
        check(|_, x| x[0].narrow(2, 3, 1), &[&[2, 3, 4]], 0.0);
    }
}
