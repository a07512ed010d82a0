//! A new shape for the same elements.

use tensor::{Dims, Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// The same elements, in row-major order, in a new shape (a view when the value is
    /// contiguous, else one copy). Panics if the element counts differ.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'g, T> {
        tensor::ok(self.try_reshape(shape))
    }

    /// Fallible [`reshape`](Self::reshape).
    pub fn try_reshape(self, shape: &[usize]) -> Result<Var<'g, T>> {
        let v = self.value().contiguous().try_reshape(shape)?;
        Ok(self.record1(v, Op::Reshape(self.id)))
    }
}

/// The gradient takes the input's shape back.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let shape: Dims = bp.value(x).shape().into();
    bp.accumulate(x, g.contiguous().reshape(&shape));
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_reshape() {
        check(|_, x| x[0].reshape(&[4, 3]), &[&[3, 4]], 0.0);
        check(|_, x| x[0].reshape(&[12]) * x[0].reshape(&[12]), &[&[2, 6]], 0.0);
    }
}
