//! `a + b` (broadcasting).

use tensor::{Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self + rhs`, broadcasting like numpy. Panics, naming both shapes, if they do not
    /// broadcast; [`try_add`](Self::try_add) returns the error instead.
    #[track_caller]
    pub fn add(self, rhs: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_add(rhs))
    }

    /// Fallible [`add`](Self::add).
    #[track_caller]
    pub fn try_add(self, rhs: Var<'g, T>) -> Result<Var<'g, T>> {
        self.binary("add", rhs, |a, b| a + b, Op::Add)
    }
}

/// `∂(a+b)/∂a = ∂(a+b)/∂b = 1`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, a: usize, b: usize, g: Tensor<T>) {
    if bp.needs(b) {
        bp.accumulate(b, g.clone());
    }
    if bp.needs(a) {
        bp.accumulate(a, g);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_add() {
        check(|_, x| x[0] + x[1], &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0] + x[1], &[&[3, 4], &[4]], 0.0); // broadcast operand
        check(|_, x| x[0] + x[0], &[&[2, 5]], 0.0); // input used twice
        check(|_, x| x[0].add_scalar(2.5), &[&[2, 3]], 0.0);
    }
}
