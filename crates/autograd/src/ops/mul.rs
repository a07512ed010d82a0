//! `a * b` (broadcasting).

use tensor::{Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self * rhs` elementwise, broadcasting like numpy. Panics, naming both shapes, on a
    /// mismatch.
    #[track_caller]
    pub fn mul(self, rhs: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_mul(rhs))
    }

    /// Fallible [`mul`](Self::mul).
    #[track_caller]
    pub fn try_mul(self, rhs: Var<'g, T>) -> Result<Var<'g, T>> {
        self.binary("mul", rhs, |a, b| a * b, Op::Mul)
    }
}

/// `∂(ab)/∂a = b`, `∂(ab)/∂b = a`; when `a` and `b` are the same value both terms add up.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, a: usize, b: usize, g: Tensor<T>) {
    if bp.needs(a) {
        let ga = &g * bp.value(b);
        bp.accumulate(a, ga);
    }
    if bp.needs(b) {
        let gb = &g * bp.value(a);
        bp.accumulate(b, gb);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_mul() {
        check(|_, x| x[0] * x[1], &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0] * x[1], &[&[2, 3, 4], &[3, 1]], 0.0);
        check(|_, x| x[0] * x[0], &[&[3, 3]], 0.0);
        check(|_, x| x[0].mul_scalar(-1.5).square(), &[&[2, 3]], 0.0);
    }
}
