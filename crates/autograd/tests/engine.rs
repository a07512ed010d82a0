//! Engine-level behaviour: a composite model's gradients, stability at extreme inputs,
//! no-grad mode, detach, and clear panics on misuse.

use autograd::{gradcheck, GradcheckConfig, GradcheckMode, Graph, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

/// tanh(x·W1ᵀ + b1)·W2ᵀ + b2 against soft targets, BCE-with-logits summed.
fn mlp<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
    let h = (v[0].matmul(v[1].t()) + v[2]).tanh();
    let logits = h.matmul(v[3].t()) + v[4];
    logits.bce_with_logits(v[5]).sum()
}

/// A 2-layer MLP with a BCE-with-logits loss; every weight, bias and the input checked.
#[test]
fn two_layer_mlp_with_bce_passes_gradcheck() {
    let mut rng = StdRng::seed_from_u64(42);
    let x = Tensor::<f64>::randn(&[5, 6], &mut rng);
    let w1 = Tensor::<f64>::randn(&[4, 6], &mut rng).mul_scalar(0.5);
    let b1 = Tensor::<f64>::randn(&[4], &mut rng);
    let w2 = Tensor::<f64>::randn(&[3, 4], &mut rng).mul_scalar(0.5);
    let b2 = Tensor::<f64>::randn(&[3], &mut rng);
    let target = Tensor::<f64>::rand_uniform(&[5, 3], 0.0, 1.0, &mut rng);
    let inputs = [x, w1, b1, w2, b2, target];
    let full = gradcheck(mlp, &inputs, &GradcheckConfig::default());
    assert!(full.passed && full.max_rel_error <= 1e-6, "{full}");
    assert_eq!(full.checked, 30 + 24 + 4 + 12 + 3 + 15);
    let fast = gradcheck(
        mlp,
        &inputs,
        &GradcheckConfig { mode: GradcheckMode::Fast { directions: 8 }, ..Default::default() },
    );
    assert!(fast.passed && fast.max_rel_error <= 1e-6, "{fast}");
}

/// The same MLP with relu, where an input feeds two branches (used twice).
#[test]
fn value_used_twice_in_a_network() {
    let mut rng = StdRng::seed_from_u64(1);
    let inputs = [Tensor::<f64>::randn(&[3, 4], &mut rng), Tensor::<f64>::randn(&[4, 4], &mut rng)];
    let r = gradcheck(
        |_, v| {
            let h = v[0].matmul(v[1]).relu();
            (h * v[0]).log_sigmoid() + h.softplus().matmul(v[1].t())
        },
        &inputs,
        &GradcheckConfig::default(),
    );
    assert!(r.passed && r.max_rel_error <= 1e-6, "{r}");
}

#[test]
fn stable_formulations_are_finite_at_extreme_inputs() {
    let g = Graph::<f32>::new();
    let x = g.param(Tensor::from_vec(vec![-1e4, -50.0, 0.0, 50.0, 1e4], &[5]));
    let t = g.constant(Tensor::from_vec(vec![1.0, 0.0, 0.5, 1.0, 0.0], &[5]));
    let losses = [
        ("log_sigmoid", x.log_sigmoid()),
        ("softplus", x.softplus()),
        ("sigmoid", x.sigmoid()),
        ("bce_with_logits", x.bce_with_logits(t)),
        ("logsumexp", x.logsumexp()),
    ];
    for (name, y) in losses {
        let v = y.value().to_vec();
        assert!(v.iter().all(|v| v.is_finite()), "{name} value {v:?}");
        let grads = y.sum().backward();
        let gx = grads.get(x).unwrap().to_vec();
        assert!(gx.iter().all(|v| v.is_finite()), "{name} gradient {gx:?}");
    }
    assert_eq!(x.log_sigmoid().value().to_vec()[0], -1e4);
    assert_eq!(x.softplus().value().to_vec()[4], 1e4);
}

#[test]
fn no_grad_and_detach() {
    let g = Graph::<f32>::no_grad();
    assert!(!g.is_grad_enabled() && Graph::<f32>::new().is_grad_enabled());
    let live = Graph::<f32>::new();
    assert!(live.param(Tensor::ones(&[1])).requires_grad());
    assert!(!live.constant(Tensor::ones(&[1])).requires_grad());
    let w = g.param(Tensor::ones(&[2, 2]));
    let y = w.matmul(w).sum();
    assert_eq!(y.value().item(), 8.0);
    assert!(!y.requires_grad());
    let msg = panic_message(|| {
        let g = Graph::<f32>::no_grad();
        let _ = g.param(Tensor::ones(&[1])).sum().backward();
    });
    assert!(msg.contains("no-grad"), "{msg}");

    let g = Graph::<f64>::new();
    let a = g.param(Tensor::from_vec(vec![3.0], &[1]));
    let y = (a * a.detach()).sum(); // d/da = a (only the live factor)
    let grads = y.backward();
    assert_eq!(grads.get(a).unwrap().to_vec(), vec![3.0]);
}

#[test]
fn misuse_panics_with_one_clear_message() {
    let msg = panic_message(|| {
        let g = Graph::<f32>::new();
        let _ = g.param(Tensor::ones(&[2, 3])).backward();
    });
    assert!(msg.starts_with("backward: called on a value of shape [2, 3], not a scalar"), "{msg}");

    let msg = panic_message(|| {
        let (g1, g2) = (Graph::<f32>::new(), Graph::<f32>::new());
        let _ = g1.param(Tensor::ones(&[2])) + g2.param(Tensor::ones(&[2]));
    });
    assert_eq!(msg, "add: operands belong to different graphs (tapes)");

    let msg = panic_message(|| {
        let g = Graph::<f32>::new();
        let _ = g.param(Tensor::ones(&[2, 3])) * g.param(Tensor::ones(&[4, 3]));
    });
    assert_eq!(msg, "mul: shapes [2, 3] and [4, 3] do not match");

    let msg = panic_message(|| {
        let g = Graph::<f32>::new();
        let _ = g.param(Tensor::ones(&[2, 3])).matmul(g.param(Tensor::ones(&[2, 3])));
    });
    assert_eq!(msg, "matmul: shapes [2, 3] and [2, 3] do not match");

    // Rank below 2 on either side, even when the inner sizes would agree.
    let g = Graph::<f32>::new();
    for (a, b) in [(&[3][..], &[3, 2][..]), (&[2, 3], &[3]), (&[3], &[3])] {
        let err = g.param(Tensor::ones(a)).try_matmul(g.param(Tensor::ones(b))).unwrap_err();
        assert_eq!(err.to_string(), format!("matmul: shapes {a:?} and {b:?} do not match"));
    }

    let err = g.param(Tensor::ones(&[2, 3])).try_add(g.param(Tensor::ones(&[3, 2]))).unwrap_err();
    assert_eq!(err.to_string(), "add: shapes [2, 3] and [3, 2] do not match");
}

#[test]
fn backward_with_a_seed_for_a_vector_output() {
    let g = Graph::<f64>::new();
    let x = g.param(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let y = x.exp();
    let grads = y.backward_with(Tensor::from_vec(vec![1.0, 0.5], &[2]));
    let gx = grads.get(x).unwrap().to_vec();
    assert!((gx[0] - 1f64.exp()).abs() < 1e-12 && (gx[1] - 0.5 * 2f64.exp()).abs() < 1e-12);
}

#[test]
fn anomaly_detection_names_the_first_bad_op() {
    let mut g = Graph::<f32>::new();
    g.set_detect_anomaly(true);
    {
        let x = g.param(Tensor::from_vec(vec![1.0, -1.0], &[2]));
        let y = x.log(); // ln(-1) = NaN: the first non-finite value
        let z = y.exp().sum();
        let a = g.forward_anomaly().expect("forward anomaly");
        assert_eq!((a.op, a.node, a.pass), ("log", y.id(), autograd::Pass::Forward));
        assert_eq!(
            a.to_string(),
            format!("op `log` (node {}) produced the first non-finite value in the forward pass", y.id())
        );
        let grads = z.backward();
        let b = grads.anomaly().expect("backward anomaly");
        assert_eq!(b.pass, autograd::Pass::Backward);
        assert!(!grads.get(x).unwrap().to_vec()[1].is_finite());
    }
    g.reset();
    assert!(g.anomaly_detection());
    // A parameter that is already non-finite is reported as a leaf.
    {
        let _ = g.param(Tensor::from_vec(vec![f32::INFINITY], &[1]));
        let a = g.forward_anomaly().expect("leaf anomaly");
        assert_eq!(a.to_string(), "leaf node 0 (an input or parameter) holds a non-finite value");
    }
    g.reset();
    // Finite everywhere, including backward: nothing reported. (Two constants first, so
    // the op's input is node 2, neither 0 nor 1.)
    let _ = (g.constant(Tensor::from_vec(vec![1.0], &[1])), g.constant(Tensor::from_vec(vec![1.0], &[1])));
    let x = g.param(Tensor::from_vec(vec![0.0, 1.0], &[2]));
    let grads = (x.sqrt().add_scalar(1.0)).log().sum().backward();
    // sqrt'(0) = inf: the backward rule of sqrt is the first to produce a non-finite gradient.
    assert_eq!(grads.anomaly().map(|a| a.op), Some("sqrt"));
    assert!(g.forward_anomaly().is_none());
}

#[test]
fn the_tape_counts_its_values_and_handles_know_their_tape() {
    let mut g = Graph::<f64>::new();
    assert!(g.is_empty());
    assert_eq!(g.len(), 0);
    {
        let x = g.param(Tensor::from_vec(vec![1.0, 2.0], &[2]));
        let y = x.exp().sum();
        assert_eq!((g.len(), x.id(), y.id()), (3, 0, 2));
        assert!(!g.is_empty());
        assert!(std::ptr::eq(y.graph(), &g));
        assert_eq!(format!("{y:?}"), "Var#2[]");
    }
    g.reset();
    assert!(g.is_empty());
}

#[test]
fn gradients_refuse_a_value_of_another_tape() {
    let g1 = Graph::<f64>::new();
    let x = g1.param(Tensor::from_vec(vec![1.0], &[1]));
    let mut grads = x.sum().backward();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![1.0]);
    let g2 = Graph::<f64>::new();
    let other = g2.param(Tensor::from_vec(vec![1.0], &[1]));
    assert_eq!(other.id(), x.id());
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        let _ = grads.get(other);
    }));
    assert_eq!(msg, "Gradients::get: the value belongs to another graph");
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        let _ = grads.take(other);
    }));
    assert_eq!(msg, "Gradients::get: the value belongs to another graph");
    assert_eq!(grads.take(x).unwrap().to_vec(), vec![1.0]);
    assert!(grads.get(x).is_none(), "taken");
    assert_eq!(grads.get_or_zeros(x).to_vec(), vec![0.0]);
}

#[test]
fn gradients_are_handed_out_contiguous() {
    // The gradient of x through a transpose is a transposed view of the upstream gradient;
    // the store makes it contiguous, with the right values.
    let g = Graph::<f64>::new();
    let x = g.param(Tensor::<f64>::arange(6).reshape(&[2, 3]));
    let r = g.constant(Tensor::<f64>::arange(6).reshape(&[3, 2]));
    let grads = (x.t() * r).sum().backward();
    let gx = grads.get(x).unwrap();
    assert!(gx.is_contiguous());
    assert_eq!(gx.to_vec(), vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
}

#[test]
fn anomalies_are_reported_only_when_detection_is_on() {
    let g = Graph::<f32>::new();
    let x = g.param(Tensor::from_vec(vec![0.0, 1.0], &[2]));
    // sqrt'(0) is infinite, but nobody asked.
    let grads = x.sqrt().sum().backward();
    assert!(!grads.get(x).unwrap().to_vec()[0].is_finite());
    assert!(grads.anomaly().is_none() && g.forward_anomaly().is_none());
    assert!(!g.anomaly_detection());
}
