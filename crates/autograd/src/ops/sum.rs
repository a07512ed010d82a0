//! Sums and means, over all axes or one axis (with `keepdim`).

use tensor::{Dims, Element, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Sum of all elements (a rank-0 value).
    pub fn sum(self) -> Var<'g, T> {
        self.record1(self.value().sum(), Op::Sum(self.id))
    }

    /// Sum over `axis`; with `keepdim` the axis stays with extent 1. Panics if `axis` is out
    /// of range.
    #[track_caller]
    pub fn sum_axis(self, axis: usize, keepdim: bool) -> Var<'g, T> {
        let v = tensor::ok(self.value().try_sum_axis(axis, keepdim));
        self.record1(v, Op::SumAxis { x: self.id, axis, keepdim })
    }

    /// Mean of all elements (a rank-0 value), as the sum times `1/n`.
    pub fn mean(self) -> Var<'g, T> {
        let n = self.shape().iter().product::<usize>();
        self.sum().mul_scalar(T::one() / T::from_usize(n).unwrap())
    }

    /// Mean over `axis`, as the sum times `1/n`.
    #[track_caller]
    pub fn mean_axis(self, axis: usize, keepdim: bool) -> Var<'g, T> {
        let s = self.sum_axis(axis, keepdim);
        let n = self.shape()[axis];
        s.mul_scalar(T::one() / T::from_usize(n).unwrap())
    }
}

/// The gradient of a full sum is the output gradient repeated (a stride-0 view, no copy).
pub(crate) fn backward_all<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let shape: Dims = bp.value(x).shape().into();
    bp.accumulate(x, g.broadcast_to(&shape));
}

/// The gradient of a sum over `axis` is the output gradient repeated along that axis.
pub(crate) fn backward_axis<T: Element>(
    bp: &mut Backprop<'_, T>,
    x: usize,
    axis: usize,
    keepdim: bool,
    g: Tensor<T>,
) {
    let shape: Dims = bp.value(x).shape().into();
    let g = if keepdim { g } else { g.unsqueeze(axis) };
    bp.accumulate(x, g.broadcast_to(&shape));
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_sum_and_mean() {
        check(|_, x| x[0].sum(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].mean(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].sum_axis(0, false), &[&[3, 4]], 0.0);
        check(|_, x| x[0].sum_axis(1, true) * x[0], &[&[3, 4]], 0.0);
        check(|_, x| x[0].mean_axis(1, false), &[&[2, 3, 4]], 0.0);
        check(|_, x| x[0].mean_axis(0, true), &[&[2, 3, 4]], 0.0);
    }
}
