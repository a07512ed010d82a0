//! `ln Σ eˣ`, over all axes or one axis, computed stably.

use tensor::{Dims, Element, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// `ln Σ eˣ` over all elements (a rank-0 value), shifted by the maximum so that it is
    /// finite for any finite input.
    pub fn logsumexp(self) -> Var<'g, T> {
        self.record1(self.value().logsumexp(), Op::LogSumExp { x: self.id, axis: None, keepdim: false })
    }

    /// `ln Σ eˣ` along `axis`, computed stably.
    #[track_caller]
    pub fn logsumexp_axis(self, axis: usize, keepdim: bool) -> Var<'g, T> {
        let v = self.value().logsumexp_axis(axis, keepdim);
        self.record1(v, Op::LogSumExp { x: self.id, axis: Some(axis), keepdim })
    }
}

/// `∂/∂xᵢ ln Σ eˣ = e^(xᵢ − out)`, the softmax, which stays in [0, 1] at any input.
pub(crate) fn backward<T: Element>(
    bp: &mut Backprop<'_, T>,
    out: usize,
    x: usize,
    axis: Option<usize>,
    keepdim: bool,
    g: Tensor<T>,
) {
    let (mut o, mut g) = (bp.value(out).clone(), g);
    if let (Some(axis), false) = (axis, keepdim) {
        o = o.unsqueeze(axis);
        g = g.unsqueeze(axis);
    }
    let shape: Dims = bp.value(x).shape().into();
    let (o, g) = (o.broadcast_to(&shape), g.broadcast_to(&shape));
    let softmax = bp.value(x).zip_with(&o, |x, o| (x - o).fast_exp());
    bp.accumulate(x, softmax.mul(&g));
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;
    use crate::tape::Graph;
    use tensor::Tensor;

    #[test]
    fn gradcheck_logsumexp() {
        check(|_, x| x[0].logsumexp(), &[&[3, 4]], 0.0);
        check(|_, x| x[0].logsumexp_axis(1, false), &[&[3, 4]], 0.0);
        check(|_, x| x[0].logsumexp_axis(0, true) * x[0], &[&[3, 4]], 0.0);
    }

    #[test]
    fn finite_at_extreme_inputs() {
        let g = Graph::<f64>::new();
        let x = g.param(Tensor::from_vec(vec![1e4, -1e4, 0.0, 1e4], &[2, 2]));
        let y = x.logsumexp_axis(1, false).sum();
        assert_eq!(y.value().item(), 2e4); // each row is dominated by one 1e4
        let grads = y.backward();
        let gx = grads.get(x).unwrap().to_vec();
        assert!(gx.iter().all(|v| v.is_finite()), "{gx:?}");
        assert_eq!(gx[0], 1.0);
        assert_eq!(gx[1], 0.0);
    }
}
