//! `-x`.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `-self`.
    pub fn neg(self) -> Var<'g, T> {
        self.unary(-&self.value(), Op::Neg(self.id))
    }
}

/// `∂(−x)/∂x = −1`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    bp.accumulate(x, -&g);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_neg() {
        check(|_, x| -x[0], &[&[3, 4]], 0.0);
        check(|_, x| -x[0] * x[0], &[&[5]], 0.0);
    }
}
