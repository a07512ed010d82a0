//! `ln σ(x) = −softplus(−x)`, stable at both tails.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `ln σ(x) = −softplus(−x)`, stable at both tails.
    pub fn log_sigmoid(self) -> Var<'g, T> {
        self.unary(self.value().log_sigmoid(), Op::LogSigmoid(self.id))
    }
}

/// `∂ln σ(x)/∂x = 1 − σ(x) = σ(−x)`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let gx = g.zip_with(bp.value(x), |g, x| g * tensor::sigmoid_scalar(-x));
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_log_sigmoid() {
        check(|_, x| x[0].log_sigmoid(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].log_sigmoid() * x[0], &[&[2, 3]], 0.0);
    }
}
