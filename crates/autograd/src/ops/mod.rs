//! The ops: unary elementwise ops as rows of one table (`unary.rs`), and one file for every
//! other op with its forward (a method on [`Var`]), its backward rule and its gradient
//! check, side by side. This module dispatches the backward walk to each op's rule; it
//! builds on the tape (`tape.rs`) and nothing here reaches back up to the walk.

use tensor::{broadcast_shapes, Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

mod add;
mod bce_with_logits;
mod bce_with_logits_sum;
mod broadcast;
mod concat;
mod conv;
mod div;
mod linear;
pub use linear::Activation;
mod logsumexp;
mod matmul;
mod mul;
mod narrow;
mod permute;
mod reshape;
mod sub;
mod sum;
mod unary;

/// Runs the backward rule of node `id`, made by `op`, given the gradient of its output.
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, id: usize, op: &Op<T>, g: Tensor<T>) {
    match *op {
        Op::Leaf => {}
        Op::Unary { x, p, ref row } => unary::backward(bp, id, x, p, row, g),
        Op::Add(a, b) => add::backward(bp, a, b, g),
        Op::Sub(a, b) => sub::backward(bp, a, b, g),
        Op::Mul(a, b) => mul::backward(bp, a, b, g),
        Op::Div(a, b) => div::backward(bp, id, a, b, g),
        Op::MatMul(a, b) => matmul::backward(bp, a, b, g),
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
        Op::Linear { x, w, b, act } => linear::backward(bp, id, x, w, b, act, g),
        Op::Conv2d { x, w, b, spec, ref saved } => conv::backward(bp, x, w, b, spec, None, saved.as_ref(), g),
        Op::ConvTranspose2d { x, w, b, spec, output_padding, ref saved } => {
            conv::backward(bp, x, w, b, spec, Some(output_padding), saved.as_ref(), g)
        }
    }
}

impl<'g, T: Element> Var<'g, T> {
    /// Records `value`, made by `op` from `self` alone.
    pub(crate) fn record1(self, value: Tensor<T>, op: Op<T>) -> Var<'g, T> {
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
    use crate::tape::{Graph, Var};

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
        check_with("", f, shapes, shift)
    }

    /// [`check`] for any function (a closure, say), named in the failure message.
    pub fn check_with<Func>(name: &str, f: Func, shapes: &[&[usize]], shift: f64)
    where
        Func: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
    {
        let per_input: Vec<Vec<Tensor<f64>>> =
            shapes.iter().enumerate().map(|(i, s)| presentations(s, 17 + i as u64, shift)).collect();
        let n = per_input.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..n {
            let inputs: Vec<Tensor<f64>> = per_input.iter().map(|p| p[k % p.len()].clone()).collect();
            let report = gradcheck(&f, &inputs, &GradcheckConfig::default());
            assert!(
                report.passed && report.max_rel_error <= 1e-6,
                "{name} presentation {k} (strides {:?}): {report}",
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
