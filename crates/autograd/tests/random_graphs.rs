//! Property test: gradients of random small expression graphs, built from every kind of op
//! and reusing values freely, agree with finite differences.

use autograd::{gradcheck, GradcheckConfig, Graph, Var};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Tensor;

/// One instruction: an op code and two operand picks (taken modulo the values so far).
type Instr = (u8, usize, usize);

/// Applies one instruction; every op maps `[2, 3]` values to a `[2, 3]` value, kept in a
/// range where finite differences are accurate.
fn apply<'g>(code: u8, a: Var<'g, f64>, b: Var<'g, f64>) -> Var<'g, f64> {
    match code % 18 {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        3 => a / (b * b).add_scalar(1.0),
        4 => a.tanh().exp(),
        5 => a.softplus().add_scalar(0.5).log(),
        6 => a.sigmoid() * b,
        7 => a.log_sigmoid(),
        8 => (a * a).add_scalar(1.0).sqrt(),
        9 => (a * a).add_scalar(1.0).powf(0.75),
        10 => a.sum_axis(0, true) + b, // broadcast back over rows
        11 => a.logsumexp_axis(1, true) - b,
        12 => a.bce_with_logits(b.sigmoid()),
        13 => a.matmul(b.t().matmul(b)).mul_scalar(0.1),
        14 => Var::concat(&[a.narrow(1, 2, 1), b.narrow(1, 0, 2)], 1),
        15 => a.linear(
            b.t().matmul(b).mul_scalar(0.3),
            Some(b.sum_axis(0, false)),
            code.is_multiple_of(2).then_some(autograd::Activation::Relu),
        ),
        16 => a.bce_with_logits_sum(b.sigmoid()).reshape(&[2, 1]) * b,
        _ => a.mean_axis(1, false).reshape(&[2, 1]) * b.t().t(),
    }
}

fn program<'g>(prog: &[Instr], inputs: &[Var<'g, f64>]) -> Var<'g, f64> {
    let mut vals: Vec<Var<'g, f64>> = inputs.to_vec();
    for &(code, i, j) in prog {
        let (a, b) = (vals[i % vals.len()], vals[j % vals.len()]);
        vals.push(apply(code, a, b));
    }
    // Use every value, so unused branches are checked too.
    vals.iter().skip(inputs.len()).fold(vals[0].mul_scalar(0.5), |acc, &v| acc + v.tanh())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_graphs_pass_gradcheck(
        prog in prop::collection::vec((any::<u8>(), 0usize..16, 0usize..16), 1..8),
        seed in 0u64..10_000,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let inputs = [Tensor::<f64>::randn(&[2, 3], &mut rng), Tensor::<f64>::randn(&[3, 2], &mut rng).t()];
        let report = gradcheck(|_: &Graph<f64>, v| program(&prog, v), &inputs, &GradcheckConfig::default());
        prop_assert!(report.passed && report.max_rel_error <= 1e-6, "{:?}: {}", prog, report);
    }
}
