//! Natural logarithm.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Natural logarithm.
    pub fn log(self) -> Var<'g, T> {
        self.unary(self.value().ln(), Op::Log(self.id))
    }
}

/// `∂ln x/∂x = 1/x`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let gx = &g / bp.value(x);
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_log() {
        check(|_, x| x[0].log(), &[&[3, 4]], 5.0);
        check(|_, x| x[0].exp().log() * x[0], &[&[2, 3]], 0.0);
    }
}
