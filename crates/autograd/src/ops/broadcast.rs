//! Broadcasting as its own op: a stride-0 view forward, a sum back to the input's shape
//! backward. Binary ops insert it, so no other backward rule has to think about shapes.

use tensor::{Dims, Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `self` repeated along axes of extent 1 (and new leading axes) to reach `shape`: a
    /// view, not a copy. Returns `self` when the shape already matches. Panics if `self`
    /// does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'g, T> {
        tensor::ok(self.try_broadcast_to(shape))
    }

    /// Fallible [`broadcast_to`](Self::broadcast_to).
    pub fn try_broadcast_to(self, shape: &[usize]) -> Result<Var<'g, T>> {
        if self.shape().as_slice() == shape {
            return Ok(self);
        }
        let v = self.value().try_broadcast_to(shape)?;
        Ok(self.record1(v, Op::Broadcast(self.id)))
    }
}

/// The gradient of a broadcast sums the output gradient over every repeated axis.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, x: usize, g: Tensor<T>) {
    let shape: Dims = bp.value(x).shape().into();
    bp.accumulate(x, g.sum_to(&shape));
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_broadcast() {
        check(|_, x| x[0].broadcast_to(&[2, 3, 4]), &[&[3, 1]], 0.0);
        check(|_, x| x[0].broadcast_to(&[5, 4]) * x[1], &[&[4], &[5, 4]], 0.0);
    }
}
