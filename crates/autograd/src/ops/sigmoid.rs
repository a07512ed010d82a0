//! Logistic sigmoid `1/(1+e^-x)`, stable at both tails.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Logistic sigmoid `1/(1+e^-x)`, stable at both tails.
    pub fn sigmoid(self) -> Var<'g, T> {
        self.unary(self.value().sigmoid(), Op::Sigmoid(self.id))
    }
}

/// `∂σ/∂x = σ(1−σ)`, from the output.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, out: usize, x: usize, g: Tensor<T>) {
    let gx = g.zip_with(bp.value(out), |g, s| g * s * (T::one() - s));
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_sigmoid() {
        check(|_, x| x[0].sigmoid(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].sigmoid() * x[0], &[&[2, 3]], 0.0);
    }
}
