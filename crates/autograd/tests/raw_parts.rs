//! Gradients through tensors made from raw parts: a parameter or constant that is a strided,
//! offset or broadcast view of some storage differentiates exactly as its contiguous copy
//! does (the same bits), and one whose element count is huge makes the ops panic with a
//! message, never a signal. CI runs this file in release and in debug.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use autograd::{Activation, Graph, Var};
use proptest::prelude::*;
use tensor::{Layout, Tensor};

/// A small valid view of `0.1·i` storage: shape, strides (0 broadcasts), offset.
fn view() -> impl Strategy<Value = Tensor<f64>> {
    (1usize..=3, 1usize..=4, 0usize..=5, 0usize..=5, 0usize..=6).prop_map(|(m, k, rs, cs, offset)| {
        let layout = Layout::new(&[m, k], &[rs, cs], offset);
        let storage: Vec<f64> = (0..layout.min_storage_len()).map(|i| 0.1 * i as f64 - 0.7).collect();
        Tensor::from_shared(Arc::new(storage), layout)
    })
}

/// A scalar loss that uses `x` `[m, k]` through most kinds of op: elementwise, broadcast,
/// reductions, products with its own transpose, the fused layer, reshapes and views.
fn loss<'g>(x: Var<'g, f64>, w: Var<'g, f64>) -> Var<'g, f64> {
    let (m, k) = (x.shape()[0], x.shape()[1]);
    let a = (x * x).exp().sum_axis(1, true);
    let b = x.matmul(x.t()).logsumexp_axis(1, false).sum();
    let c = x.linear(w, None, Some(Activation::Tanh)).sum();
    let d = x.reshape(&[m * k]).narrow(0, 0, 1).sum();
    let e = x.permute(&[1, 0]).bce_with_logits(x.t().sigmoid()).mean();
    a.sum() + b + c + d + e
}

/// The gradients of [`loss`] in `x` and `w`, as bits.
fn grads(x: &Tensor<f64>, w: &Tensor<f64>) -> (Vec<u64>, Vec<u64>) {
    let g = Graph::new();
    let (xv, wv) = (g.param(x.clone()), g.param(w.clone()));
    let store = loss(xv, wv).backward();
    let bits = |v| {
        store.get(v).expect("a parameter's gradient").to_vec().iter().map(|x: &f64| x.to_bits()).collect()
    };
    (bits(xv), bits(wv))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_view_differentiates_as_its_contiguous_copy(x in view(), out in 1usize..=3) {
        let w = Tensor::from_vec((0..out * x.shape()[1]).map(|i| 0.05 * i as f64).collect(), &[out, x.shape()[1]]);
        let copy = Tensor::from_vec(x.to_vec(), x.shape());
        let (gx, gw) = grads(&x, &w);
        prop_assert_eq!(gx.len(), x.len());
        prop_assert_eq!(grads(&copy, &w), (gx, gw));
    }
}

#[test]
fn huge_broadcast_parameters_panic_with_a_message() {
    let big = 1usize << 40;
    let one = Tensor::<f32>::ones(&[1, 1]);
    let wide = one.broadcast_to(&[big, 1]);
    for op in 0..4 {
        let err = catch_unwind(AssertUnwindSafe(|| {
            let g = Graph::new();
            let x = g.param(wide.clone());
            let y = match op {
                0 => x.exp().sum(),
                1 => x.matmul(x.t()).sum(),
                2 => x.sum_axis(0, false).sum(),
                _ => (x * x).sum(),
            };
            y.backward();
        }))
        .expect_err("2^40 elements cannot be computed here");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("allocate") || msg.contains("overflows"), "{msg}");
    }
}
