//! `max(x, 0)`.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `max(x, 0)`.
    pub fn relu(self) -> Var<'g, T> {
        self.unary(self.value().relu(), Op::Relu(self.id))
    }
}

/// `∂relu(x)/∂x` is 1 where `x > 0`, else 0.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let gx = g.zip_with(bp.value(x), |g, x| if x > T::zero() { g } else { T::zero() });
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_relu() {
        // Normal draws land within eps of the kink at 0 with negligible probability.
        check(|_, x| x[0].relu(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].relu() * x[0], &[&[3, 4]], 0.0);
    }
}
