//! Binary cross-entropy on logits summed over the last axis, fused: no per-element loss
//! tensor is made, forward or backward.

use tensor::{Element, Result, Tensor, TensorError};

use super::bce_with_logits::bce;

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `Σⱼ BCE-with-logits(self[…, j], target[…, j])`, the per-row negative Bernoulli
    /// log-likelihood, stable at any finite logit. Same shapes required (rank ≥ 1); the
    /// result drops the last axis. Panics, naming both shapes, otherwise.
    #[track_caller]
    pub fn bce_with_logits_sum(self, target: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_bce_with_logits_sum(target))
    }

    /// Fallible [`bce_with_logits_sum`](Self::bce_with_logits_sum).
    #[track_caller]
    pub fn try_bce_with_logits_sum(self, target: Var<'g, T>) -> Result<Var<'g, T>> {
        self.same_graph("bce_with_logits_sum", &target);
        let (x, t) = (self.value(), target.value());
        if x.shape() != t.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "bce_with_logits_sum",
                lhs: x.shape().to_vec(),
                rhs: t.shape().to_vec(),
            });
        }
        let value = x.try_zip_sum_last(
            &t,
            #[inline(always)]
            |x, t| bce(x, t),
        )?;
        Ok(Var::record(
            self.graph,
            value,
            Op::BceWithLogitsSum { logits: self.id, target: target.id },
            &[self.id, target.id],
        ))
    }
}

/// `∂/∂x = g·(σ(x) − t)`, `∂/∂t = −g·x`, with `g` the row's output gradient.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, logits: usize, target: usize, g: Tensor<T>) {
    let g = g.unsqueeze(g.rank());
    if bp.needs(target) {
        let mut gt = bp.value(logits).map(|x| -x);
        gt.zip_inplace(&g, |a, g| a * g);
        bp.accumulate(target, gt);
    }
    if bp.needs(logits) {
        let mut gx = bp.value(logits).zip_with(
            bp.value(target),
            #[inline(always)]
            |x, t| tensor::sigmoid_scalar(x) - t,
        );
        gx.zip_inplace(&g, |d, g| d * g);
        bp.accumulate(logits, gx);
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;

    #[test]
    fn gradcheck_bce_with_logits_sum() {
        check(|_, x| x[0].bce_with_logits_sum(x[1].sigmoid()), &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0].mul_scalar(3.0).bce_with_logits_sum(x[0].sigmoid()), &[&[2, 3, 4]], 0.0);
    }

    #[test]
    fn equals_the_unfused_sum() {
        use crate::tape::Graph;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let g = Graph::<f64>::new();
        let x = g.param(tensor::Tensor::randn(&[5, 7], &mut rng).mul_scalar(5.0));
        let t = g.constant(tensor::Tensor::rand_uniform(&[5, 7], 0.0, 1.0, &mut rng));
        let fused = x.bce_with_logits_sum(t).value().to_vec();
        let plain = x.bce_with_logits(t).sum_axis(1, false).value().to_vec();
        for (f, p) in fused.iter().zip(&plain) {
            assert!((f - p).abs() < 1e-12);
        }
    }
}
