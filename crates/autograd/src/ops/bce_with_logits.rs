//! Binary cross-entropy on logits, fused for numerical stability.

use tensor::{Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Elementwise `−[t·ln σ(x) + (1−t)·ln(1−σ(x))]` for logits `x = self` and targets `t`
    /// in [0, 1], computed as `max(x, 0) − x·t + ln(1 + e^−|x|)`: finite, with finite
    /// gradients, at any finite logit. Broadcasts like numpy; panics, naming both shapes, on
    /// a mismatch.
    #[track_caller]
    pub fn bce_with_logits(self, target: Var<'g, T>) -> Var<'g, T> {
        tensor::ok(self.try_bce_with_logits(target))
    }

    /// Fallible [`bce_with_logits`](Self::bce_with_logits).
    #[track_caller]
    pub fn try_bce_with_logits(self, target: Var<'g, T>) -> Result<Var<'g, T>> {
        self.binary(
            "bce_with_logits",
            target,
            |x, t| {
                x.zip_with(
                    t,
                    #[inline(always)]
                    |x, t| bce(x, t),
                )
            },
            |logits, target| Op::BceWithLogits { logits, target },
        )
    }
}

/// The loss of one logit `x` against one target `t`.
#[inline(always)]
pub fn bce<T: Element>(x: T, t: T) -> T {
    x.max(T::zero()) - x * t + x.fast_softplus_tail()
}

/// `∂/∂x = σ(x) − t`, `∂/∂t = −x`.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, logits: usize, target: usize, g: Tensor<T>) {
    if bp.needs(target) {
        let gt = g.zip_with(bp.value(logits), |g, x| -g * x);
        bp.accumulate(target, gt);
    }
    if bp.needs(logits) {
        let diff = bp.value(logits).zip_with(bp.value(target), |x, t| tensor::sigmoid_scalar(x) - t);
        bp.accumulate(logits, diff.mul(&g));
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;
    use crate::tape::Graph;
    use tensor::Tensor;

    #[test]
    fn gradcheck_bce_with_logits() {
        check(|_, x| x[0].bce_with_logits(x[1].sigmoid()), &[&[3, 4], &[3, 4]], 0.0);
        check(|_, x| x[0].mul_scalar(3.0).bce_with_logits(x[1].sigmoid()), &[&[3, 4], &[4]], 0.0);
    }

    #[test]
    fn matches_the_unfused_formula_and_stays_finite() {
        let g = Graph::<f64>::new();
        let x = g.param(Tensor::from_vec(vec![-3.0, 0.5, 2.0, 1e4, -1e4, 1e4], &[6]));
        let t = g.constant(Tensor::from_vec(vec![0.2, 1.0, 0.0, 1.0, 0.0, 0.0], &[6]));
        let l = x.bce_with_logits(t);
        for (i, (&xv, &tv)) in x.value().to_vec().iter().zip(&t.value().to_vec()).enumerate().take(3) {
            let s = 1.0 / (1.0 + (-xv).exp());
            let want = -(tv * s.ln() + (1.0 - tv) * (1.0 - s).ln());
            assert!((l.value().to_vec()[i] - want).abs() < 1e-12);
        }
        let lv = l.value().to_vec();
        assert_eq!(&lv[3..], &[0.0, 0.0, 1e4]);
        let grads = l.sum().backward();
        let gx = grads.get(x).unwrap().to_vec();
        assert!(gx.iter().all(|v| v.is_finite()));
        assert_eq!(&gx[3..], &[0.0, 0.0, 1.0]);
    }
}
