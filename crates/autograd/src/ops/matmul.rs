//! Matrix product over the last two axes, with batch axes that broadcast.

use tensor::{broadcast_shapes, Dims, Element, Result, Tensor, TensorError};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// The matrix product `self · rhs` over the last two axes; leading axes are batch axes
    /// that broadcast. Transposed operands (`w.t()`) are used through their strides, not
    /// copied. Panics, naming both shapes, when they do not fit.
    #[track_caller]
    pub fn matmul(self, rhs: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_matmul(rhs))
    }

    /// Fallible [`matmul`](Self::matmul).
    #[track_caller]
    pub fn try_matmul(self, rhs: Var<'g, T>) -> Result<Var<'g, T>> {
        self.same_graph("matmul", &rhs);
        let (sa, sb) = (self.shape(), rhs.shape());
        let mismatch = || TensorError::ShapeMismatch { op: "matmul", lhs: sa.to_vec(), rhs: sb.to_vec() };
        if sa.len() < 2 || sb.len() < 2 || sa[sa.len() - 1] != sb[sb.len() - 2] {
            return Err(mismatch());
        }
        // Broadcast batch axes as their own nodes, so the backward below sees equal batches.
        let (a, b) = if sa[..sa.len() - 2] == sb[..sb.len() - 2] {
            (self, rhs)
        } else {
            let batch = broadcast_shapes("matmul", &sa[..sa.len() - 2], &sb[..sb.len() - 2])
                .map_err(|_| mismatch())?;
            let full = |s: &Dims| -> Dims { batch.iter().chain(&s[s.len() - 2..]).copied().collect() };
            (self.broadcast_to(&full(&sa)), rhs.broadcast_to(&full(&sb)))
        };
        let value = a.value().try_matmul(&b.value())?;
        Ok(Var::record(self.graph, value, Op::MatMul(a.id, b.id), &[a.id, b.id]))
    }
}

/// For `C = A·B`: `∂A = ∂C·Bᵀ`, `∂B = Aᵀ·∂C`, both through transposed views and added
/// into an existing gradient with `beta = 1`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, a: usize, b: usize, g: Tensor<T>) {
    let da = bp.needs(a).then(|| (a, g.clone(), bp.value(b).t()));
    let db = bp.needs(b).then(|| (b, bp.value(a).t(), g));
    bp.accumulate_matmuls([da, db]);
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_matmul() {
        check(|_, x| x[0].matmul(x[1]), &[&[3, 4], &[4, 5]], 0.0);
        check(|_, x| x[0].matmul(x[1].t()), &[&[3, 4], &[5, 4]], 0.0);
        check(|_, x| x[0].matmul(x[0]), &[&[4, 4]], 0.0); // used twice
        check(|_, x| x[0].matmul(x[1]), &[&[2, 3, 4], &[4, 2]], 0.0); // broadcast batch
        check(|_, x| x[0].matmul(x[1]), &[&[2, 1, 3, 4], &[3, 4, 2]], 0.0);
        // A product added into an existing gradient (beta = 1).
        check(|_, x| x[0].matmul(x[1]) + x[0].matmul(x[1].exp()), &[&[3, 4], &[4, 2]], 0.0);
    }
}
