//! `e^x`.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `e^x`.
    pub fn exp(self) -> Var<'g, T> {
        self.unary(self.value().exp(), Op::Exp(self.id))
    }
}

/// `∂eˣ/∂x = eˣ`, the output itself.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, out: usize, x: usize, g: Tensor<T>) {
    let gx = &g * bp.value(out);
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_exp() {
        check(|_, x| x[0].exp(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].exp() * x[0], &[&[2, 3]], 0.0);
    }
}
