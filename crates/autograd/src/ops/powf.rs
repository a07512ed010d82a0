//! `x^p` for a constant exponent.

use tensor::{Element, Tensor};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self^p` elementwise, for a constant `p`.
    pub fn powf(self, p: T) -> Var<'g, T> {
        self.unary(self.value().powf(p), Op::Powf(self.id, p))
    }
}

/// `∂xᵖ/∂x = p·xᵖ⁻¹`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, p: T, g: Tensor<T>) {
    let pm1 = p - T::one();
    let gx = g.zip_with(bp.value(x), |g, x| g * p * x.powf(pm1));
    bp.accumulate(x, gx);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_powf() {
        check(|_, x| x[0].powf(2.5), &[&[3, 4]], 5.0);
        check(|_, x| x[0].powf(-1.5) * x[0], &[&[2, 3]], 5.0);
        check(|_, x| x[0].powf(3.0), &[&[2, 3]], 0.0);
    }
}
