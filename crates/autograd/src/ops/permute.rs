//! Axis reorders: `permute`, `transpose`, `t` (views).

use tensor::{Dims, Element, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Reorders axes: axis `i` of the result is axis `perm[i]` of `self` (a view).
    #[track_caller]
    pub fn permute(self, perm: &[usize]) -> Var<'g, T> {
        let v = tensor::ok(self.value().try_permute(perm));
        self.record1(v, Op::Permute(self.id, perm.into()))
    }

    /// Swaps axes `a` and `b` (a view).
    #[track_caller]
    pub fn transpose(self, a: usize, b: usize) -> Var<'g, T> {
        let mut perm: Dims = (0..self.shape().len()).collect();
        if a >= perm.len() || b >= perm.len() {
            // Let the tensor report the bad axis.
            tensor::ok(self.value().try_transpose(a, b));
        }
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Swaps the last two axes (a view): `w.t()` for a weight stored `[out, in]`.
    #[track_caller]
    pub fn t(self) -> Var<'g, T> {
        let r = self.shape().len();
        if r < 2 {
            tensor::ok(Err::<(), _>(tensor::TensorError::Invalid {
                op: "t",
                msg: format!("needs rank 2 or more, got shape {:?}", self.shape().as_slice()),
            }));
        }
        self.transpose(r - 2, r - 1)
    }
}

/// The gradient is permuted back by the inverse permutation.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, perm: &[usize], g: Tensor<T>) {
    let mut inverse: Dims = Dims::from_elem(0, perm.len());
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    bp.accumulate(x, g.permute(&inverse));
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_permute() {
        check(|_, x| x[0].t(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].permute(&[2, 0, 1]), &[&[2, 3, 4]], 0.0);
        check(|_, x| x[0].transpose(0, 1) * x[0].t(), &[&[3, 3]], 0.0);
    }
}
