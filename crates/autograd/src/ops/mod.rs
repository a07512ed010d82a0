//! One file per op: its forward (a method on [`Var`]), its backward rule, and its gradient
//! check, side by side. This module holds the [`Op`] record and the dispatch of the
//! backward walk to each file's rule.

use tensor::{broadcast_shapes, Dims, Element, Result, Tensor};

use crate::graph::{Backprop, Var};

mod add;
mod bce_with_logits;
mod bce_with_logits_sum;
pub use bce_with_logits::bce as bce_with_logits_scalar;
mod broadcast;
mod concat;
mod div;
mod exp;
mod linear;
mod log;
mod log_sigmoid;
mod logsumexp;
mod matmul;
mod mul;
mod narrow;
mod neg;
mod permute;
mod powf;
mod relu;
mod reshape;
mod sigmoid;
mod softplus;
mod sqrt;
mod sub;
mod sum;
mod tanh;

/// How a value was made: the op and the ids of its inputs (plus any constant it needs).
pub(crate) enum Op<T: Element> {
    Leaf,
    Add(usize, usize),
    AddScalar(usize),
    Sub(usize, usize),
    Mul(usize, usize),
    MulScalar(usize, T),
    Div(usize, usize),
    Neg(usize),
    MatMul(usize, usize),
    Exp(usize),
    Log(usize),
    Sqrt(usize),
    Powf(usize, T),
    Relu(usize),
    Sigmoid(usize),
    Tanh(usize),
    Softplus(usize),
    LogSigmoid(usize),
    Sum(usize),
    SumAxis { x: usize, axis: usize, keepdim: bool },
    LogSumExp { x: usize, axis: Option<usize>, keepdim: bool },
    Broadcast(usize),
    Reshape(usize),
    Permute(usize, Dims),
    Narrow { x: usize, axis: usize, start: usize },
    Concat { xs: Vec<usize>, axis: usize },
    BceWithLogits { logits: usize, target: usize },
    BceWithLogitsSum { logits: usize, target: usize },
    Linear { x: usize, w: usize, b: Option<usize>, relu: bool },
}

impl<T: Element> Op<T> {
    /// The op's name, as error messages and anomaly reports give it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Add(..) => "add",
            Op::AddScalar(..) => "add_scalar",
            Op::Sub(..) => "sub",
            Op::Mul(..) => "mul",
            Op::MulScalar(..) => "mul_scalar",
            Op::Div(..) => "div",
            Op::Neg(..) => "neg",
            Op::MatMul(..) => "matmul",
            Op::Exp(..) => "exp",
            Op::Log(..) => "log",
            Op::Sqrt(..) => "sqrt",
            Op::Powf(..) => "powf",
            Op::Relu(..) => "relu",
            Op::Sigmoid(..) => "sigmoid",
            Op::Tanh(..) => "tanh",
            Op::Softplus(..) => "softplus",
            Op::LogSigmoid(..) => "log_sigmoid",
            Op::Sum(..) => "sum",
            Op::SumAxis { .. } => "sum_axis",
            Op::LogSumExp { .. } => "logsumexp",
            Op::Broadcast(..) => "broadcast_to",
            Op::Reshape(..) => "reshape",
            Op::Permute(..) => "permute",
            Op::Narrow { .. } => "narrow",
            Op::Concat { .. } => "concat",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::BceWithLogitsSum { .. } => "bce_with_logits_sum",
            Op::Linear { relu: false, .. } => "linear",
            Op::Linear { relu: true, .. } => "linear_relu",
        }
    }

    /// The ids of the op's inputs.
    pub(crate) fn inputs(&self) -> Vec<usize> {
        match *self {
            Op::Leaf => vec![],
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::MatMul(a, b) => vec![a, b],
            Op::BceWithLogits { logits, target } | Op::BceWithLogitsSum { logits, target } => {
                vec![logits, target]
            }
            Op::Linear { x, w, b, .. } => [Some(x), Some(w), b].into_iter().flatten().collect(),
            Op::AddScalar(x)
            | Op::MulScalar(x, _)
            | Op::Neg(x)
            | Op::Exp(x)
            | Op::Log(x)
            | Op::Sqrt(x)
            | Op::Powf(x, _)
            | Op::Relu(x)
            | Op::Sigmoid(x)
            | Op::Tanh(x)
            | Op::Softplus(x)
            | Op::LogSigmoid(x)
            | Op::Sum(x)
            | Op::SumAxis { x, .. }
            | Op::LogSumExp { x, .. }
            | Op::Broadcast(x)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow { x, .. } => vec![x],
            Op::Concat { ref xs, .. } => xs.clone(),
        }
    }
}

/// Runs the backward rule of node `id`, made by `op`, given the gradient of its output.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, id: usize, op: &Op<T>, g: Tensor<T>) {
    match *op {
        Op::Leaf => {}
        Op::Add(a, b) => add::backward(bp, a, b, g),
        Op::AddScalar(x) => bp.accumulate(x, g),
        Op::Sub(a, b) => sub::backward(bp, a, b, g),
        Op::Mul(a, b) => mul::backward(bp, a, b, g),
        Op::MulScalar(x, s) => mul::backward_scalar(bp, x, s, g),
        Op::Div(a, b) => div::backward(bp, id, a, b, g),
        Op::Neg(x) => neg::backward(bp, x, g),
        Op::MatMul(a, b) => matmul::backward(bp, a, b, g),
        Op::Exp(x) => exp::backward(bp, id, x, g),
        Op::Log(x) => log::backward(bp, x, g),
        Op::Sqrt(x) => sqrt::backward(bp, id, x, g),
        Op::Powf(x, p) => powf::backward(bp, x, p, g),
        Op::Relu(x) => relu::backward(bp, x, g),
        Op::Sigmoid(x) => sigmoid::backward(bp, id, x, g),
        Op::Tanh(x) => tanh::backward(bp, id, x, g),
        Op::Softplus(x) => softplus::backward(bp, x, g),
        Op::LogSigmoid(x) => log_sigmoid::backward(bp, x, g),
        Op::Sum(x) => sum::backward_all(bp, x, g),
        Op::SumAxis { x, axis, keepdim } => sum::backward_axis(bp, x, axis, keepdim, g),
        Op::LogSumExp { x, axis, keepdim } => logsumexp::backward(bp, id, x, axis, keepdim, g),
        Op::Broadcast(x) => broadcast::backward(bp, x, g),
        Op::Reshape(x) => reshape::backward(bp, x, g),
        Op::Permute(x, ref perm) => permute::backward(bp, x, perm, g),
        Op::Narrow { x, axis, start } => narrow::backward(bp, x, axis, start, g),
        Op::Concat { ref xs, axis } => concat::backward(bp, xs, axis, g),
        Op::BceWithLogits { logits, target } => bce_with_logits::backward(bp, logits, target, g),
        Op::BceWithLogitsSum { logits, target } => bce_with_logits_sum::backward(bp, logits, target, g),
        Op::Linear { x, w, b, relu } => linear::backward(bp, id, x, w, b, relu, g),
    }
}

impl<'g, T: Element> Var<'g, T> {
    /// Records a unary op: `value` computed from `self`.
    pub(crate) fn unary(self, value: Tensor<T>, op: Op<T>) -> Var<'g, T> {
        Var::record(self.graph, value, op, &[self.id])
    }

    /// Records an elementwise binary op after broadcasting both operands to a common shape
    /// (each broadcast is its own node, whose backward sums back to the operand's shape).
    #[track_caller]
    pub(crate) fn binary(
        self,
        name: &'static str,
        rhs: Var<'g, T>,
        forward: impl FnOnce(&Tensor<T>, &Tensor<T>) -> Tensor<T>,
        op: fn(usize, usize) -> Op<T>,
    ) -> Result<Var<'g, T>> {
        self.same_graph(name, &rhs);
        let (ls, rs) = (self.shape(), rhs.shape());
        let (l, r) = if ls == rs {
            (self, rhs)
        } else {
            let shape = broadcast_shapes(name, &ls, &rs)?;
            (self.broadcast_to(&shape), rhs.broadcast_to(&shape))
        };
        let value = forward(&l.value(), &r.value());
        Ok(Var::record(self.graph, value, op(l.id, r.id), &[l.id, r.id]))
    }
}

/// Shared helpers of the per-op gradient checks.
#[cfg(test)]
pub(crate) mod testing {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use tensor::Tensor;

    use crate::gradcheck::{gradcheck, GradcheckConfig};
    use crate::graph::{Graph, Var};

    /// The inputs' function under test.
    pub type F = for<'g> fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>;

    /// `shape` as four presentations: contiguous, transposed, narrowed and broadcast views.
    pub fn presentations(shape: &[usize], seed: u64, shift: f64) -> Vec<Tensor<f64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = shape.len();
        let mut out = vec![Tensor::randn(shape, &mut rng)];
        if r >= 2 {
            let mut s = shape.to_vec();
            s.swap(r - 2, r - 1);
            out.push(Tensor::randn(&s, &mut rng).t());
        }
        if r >= 1 {
            let mut big = shape.to_vec();
            big[0] += 2;
            out.push(Tensor::randn(&big, &mut rng).narrow(0, 1, shape[0]));
            let mut small = shape.to_vec();
            small[r - 1] = 1;
            out.push(Tensor::randn(&small, &mut rng).broadcast_to(shape));
        }
        out.into_iter().map(|t| t.add_scalar(shift)).collect()
    }

    /// Asserts that `f` passes the gradient check at every presentation of its inputs'
    /// shapes (each input is shifted by `shift`, to keep it in a function's domain).
    pub fn check(f: F, shapes: &[&[usize]], shift: f64) {
        let per_input: Vec<Vec<Tensor<f64>>> =
            shapes.iter().enumerate().map(|(i, s)| presentations(s, 17 + i as u64, shift)).collect();
        let n = per_input.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..n {
            let inputs: Vec<Tensor<f64>> = per_input.iter().map(|p| p[k % p.len()].clone()).collect();
            let report = gradcheck(f, &inputs, &GradcheckConfig::default());
            assert!(
                report.passed && report.max_rel_error <= 1e-6,
                "presentation {k} (strides {:?}): {report}",
                inputs.iter().map(|t| t.strides().to_vec()).collect::<Vec<_>>()
            );
        }
    }
}

macro_rules! operator {
    ($tr:ident, $m:ident) => {
        impl<'g, T: Element> std::ops::$tr for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $m(self, rhs: Var<'g, T>) -> Var<'g, T> {
                Var::$m(self, rhs)
            }
        }
        impl<'g, T: Element> std::ops::$tr<&Var<'g, T>> for &Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $m(self, rhs: &Var<'g, T>) -> Var<'g, T> {
                Var::$m(*self, *rhs)
            }
        }
    };
}

operator!(Add, add);
operator!(Sub, sub);
operator!(Mul, mul);
operator!(Div, div);

impl<'g, T: Element> std::ops::Neg for Var<'g, T> {
    type Output = Var<'g, T>;
    fn neg(self) -> Var<'g, T> {
        Var::neg(self)
    }
}

impl<'g, T: Element> std::ops::Neg for &Var<'g, T> {
    type Output = Var<'g, T>;
    fn neg(self) -> Var<'g, T> {
        Var::neg(*self)
    }
}
