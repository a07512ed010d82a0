//! `a - b` (broadcasting).

use tensor::{Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self - rhs`, broadcasting like numpy. Panics, naming both shapes, on a mismatch.
    #[track_caller]
    pub fn sub(self, rhs: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_sub(rhs))
    }

    /// Fallible [`sub`](Self::sub).
    #[track_caller]
    pub fn try_sub(self, rhs: Var<'g, T>) -> Result<Var<'g, T>> {
        self.binary("sub", rhs, |a, b| a - b, Op::Sub)
    }
}

/// `∂(a−b)/∂a = 1`, `∂(a−b)/∂b = −1`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, a: usize, b: usize, g: Tensor<T>) {
    if bp.needs(b) {
        bp.accumulate(b, -&g);
    }
    if bp.needs(a) {
        bp.accumulate(a, g);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_sub() {
        check(|_, x| x[0] - x[1], &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0] - x[1], &[&[3, 1], &[2, 3, 4]], 0.0);
        check(|_, x| x[0] - x[0] * x[0], &[&[4, 2]], 0.0);
    }
}
