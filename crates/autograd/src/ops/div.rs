//! `a / b` (broadcasting).

use tensor::{Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self / rhs` elementwise, broadcasting like numpy. Panics, naming both shapes, on a
    /// mismatch.
    #[track_caller]
    pub fn div(self, rhs: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_div(rhs))
    }

    /// Fallible [`div`](Self::div).
    #[track_caller]
    pub fn try_div(self, rhs: Var<'g, T>) -> Result<Var<'g, T>> {
        self.binary("div", rhs, |a, b| a / b, Op::Div)
    }
}

/// `∂(a/b)/∂a = 1/b`, `∂(a/b)/∂b = −(a/b)/b`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, out: usize, a: usize, b: usize, g: Tensor<T>) {
    if bp.needs(b) {
        let q = bp.value(out).div(bp.value(b));
        let gb = g.zip_with(&q, |g, q| -g * q);
        bp.accumulate(b, gb);
    }
    if bp.needs(a) {
        let ga = &g / bp.value(b);
        bp.accumulate(a, ga);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_div() {
        // Denominators shifted away from zero.
        check(|_, x| x[0] / x[1].exp(), &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0] / x[1], &[&[3, 4], &[4]], 4.0);
        check(|_, x| x[0] / x[0].add_scalar(6.0), &[&[2, 3]], 0.0);
    }
}
