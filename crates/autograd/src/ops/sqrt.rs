//! Square root.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Square root.
    pub fn sqrt(self) -> Var<'g, T> {
        self.unary(self.value().sqrt(), Op::Sqrt(self.id))
    }
}

/// `∂√x/∂x = 1/(2√x)`, from the output.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, out: usize, x: usize, g: Tensor<T>) {
    let half = T::from_f64_lossy(0.5);
    let gx = g.zip_with(bp.value(out), |g, s| g * half / s);
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_sqrt() {
        check(|_, x| x[0].sqrt(), &[&[3, 4]], 5.0);
        check(|_, x| x[0].sqrt() * x[0], &[&[2, 3]], 5.0);
    }
}
