//! `ln(1 + e^x)`, stable at both tails.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `ln(1 + e^x)`, stable at both tails.
    pub fn softplus(self) -> Var<'g, T> {
        self.unary(self.value().softplus(), Op::Softplus(self.id))
    }
}

/// `∂softplus/∂x = σ(x)`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let gx = g.zip_with(bp.value(x), |g, x| g * tensor::sigmoid_scalar(x));
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_softplus() {
        check(|_, x| x[0].softplus(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].softplus() * x[0], &[&[2, 3]], 0.0);
    }
}
