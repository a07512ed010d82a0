//! The fused fully connected layer `act(x·Wᵀ + b)`: the bias is written into the output
//! before one accumulating GEMM, and ReLU is applied in place, so the layer makes one tensor
//! where matmul, add and relu would make three.

use tensor::{Element, Result, Tensor, TensorError};

use super::Op;
use crate::graph::{Backprop, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `x·Wᵀ + b` for `x = self` `[n, in]`, `w` `[out, in]` (PyTorch's layout) and an
    /// optional bias `[out]`, followed by ReLU when `relu` is set. Panics, naming the shapes,
    /// when they do not fit.
    #[track_caller]
    pub fn linear(self, w: Var<'g, T>, b: Option<Var<'g, T>>, relu: bool) -> Var<'g, T> {
        crate::ok(self.try_linear(w, b, relu))
    }

    /// Fallible [`linear`](Self::linear).
    #[track_caller]
    pub fn try_linear(self, w: Var<'g, T>, b: Option<Var<'g, T>>, relu: bool) -> Result<Var<'g, T>> {
        self.same_graph("linear", &w);
        let (x, wv) = (self.value(), w.value());
        let (sx, sw) = (x.shape(), wv.shape());
        if sx.len() != 2 || sw.len() != 2 || sx[1] != sw[1] {
            return Err(TensorError::ShapeMismatch { op: "linear", lhs: sx.to_vec(), rhs: sw.to_vec() });
        }
        let (n, out) = (sx[0], sw[0]);
        let mut y = match b {
            Some(b) => {
                self.same_graph("linear", &b);
                let bv = b.value();
                if bv.shape() != [out] {
                    return Err(TensorError::ShapeMismatch {
                        op: "linear (bias)",
                        lhs: sw.to_vec(),
                        rhs: bv.shape().to_vec(),
                    });
                }
                bv.broadcast_to(&[n, out]).contiguous()
            }
            None => Tensor::zeros(&[n, out]),
        };
        let beta = if b.is_some() { T::one() } else { T::zero() };
        y.matmul_acc(T::one(), &x, &wv.t(), beta);
        if relu {
            y.map_inplace(|v| if v > T::zero() { v } else { T::zero() });
        }
        let mut inputs = vec![self.id, w.id];
        inputs.extend(b.map(|b| b.id));
        Ok(Var::record(self.graph, y, Op::Linear { x: self.id, w: w.id, b: b.map(|b| b.id), relu }, &inputs))
    }
}

/// With `g` the output gradient masked by ReLU's derivative (where the output is positive):
/// `∂x = g·W`, `∂W = gᵀ·x` (through transposed views, accumulated with `beta = 1`), and
/// `∂b = Σ_rows g`.
pub(crate) fn backward<T: Element>(
    bp: &mut Backprop<'_, T>,
    out: usize,
    x: usize,
    w: usize,
    b: Option<usize>,
    relu: bool,
    g: Tensor<T>,
) {
    let g =
        if relu { g.zip_with(bp.value(out), |g, y| if y > T::zero() { g } else { T::zero() }) } else { g };
    if let Some(b) = b.filter(|&b| bp.needs(b)) {
        bp.accumulate(b, g.sum_axis(0, false));
    }
    if bp.needs(w) {
        let xv = bp.value(x).clone();
        bp.accumulate_matmul(w, &g.t(), &xv);
    }
    if bp.needs(x) {
        let wv = bp.value(w).clone();
        bp.accumulate_matmul(x, &g, &wv);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_linear() {
        check(|_, v| v[0].linear(v[1], Some(v[2]), false), &[&[3, 4], &[5, 4], &[5]], 0.0);
        check(|_, v| v[0].linear(v[1], Some(v[2]), true), &[&[3, 4], &[5, 4], &[5]], 0.0);
        check(
            |_, v| v[0].linear(v[1], None, true) * v[0].linear(v[1], None, false),
            &[&[3, 4], &[2, 4]],
            0.0,
        );
        check(|_, v| v[0].linear(v[0], None, false), &[&[4, 4]], 0.0); // input used twice
    }

    #[test]
    fn matches_the_unfused_ops() {
        use crate::graph::Graph;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let g = Graph::<f64>::new();
        let x = g.param(tensor::Tensor::randn(&[6, 5], &mut rng));
        let w = g.param(tensor::Tensor::randn(&[4, 5], &mut rng));
        let b = g.param(tensor::Tensor::randn(&[4], &mut rng));
        let fused = x.linear(w, Some(b), true).value().to_vec();
        let plain = (x.matmul(w.t()) + b).relu().value().to_vec();
        for (f, p) in fused.iter().zip(&plain) {
            assert!((f - p).abs() < 1e-12);
        }
    }
}
