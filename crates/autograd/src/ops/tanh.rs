//! Hyperbolic tangent.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Hyperbolic tangent.
    pub fn tanh(self) -> Var<'g, T> {
        self.unary(self.value().tanh(), Op::Tanh(self.id))
    }
}

/// `∂tanh/∂x = 1 − tanh²`, from the output.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, out: usize, x: usize, g: Tensor<T>) {
    let gx = g.zip_with(bp.value(out), |g, t| g * (T::one() - t * t));
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_tanh() {
        check(|_, x| x[0].tanh(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].tanh() * x[0], &[&[2, 3]], 0.0);
    }
}
