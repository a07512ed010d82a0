//! Every unary elementwise op as one row of a table: its name (the method on [`Var`]), its
//! forward kernel on one element, its derivative on one element, and whether the
//! derivative is written in terms of the op's input or its output (`sigmoid' = y(1−y)` needs
//! only the output, `softplus' = sigmoid(x)` the input). The backward rule is the same for
//! every row, `∂x = g · f'(v)`, so a new op is one row and nothing else; the gradient check
//! and the stability check below loop over the table.
//!
//! A row may take one constant parameter (`powf`'s exponent, `leaky_relu`'s slope), named
//! in the row and passed to the method.

use tensor::{sigmoid_scalar, softplus_scalar, Element, Tensor};

use crate::tape::{Op, UnaryRow, Uses, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Records `row` applied to `self` with parameter `p`.
    pub(crate) fn unary(self, row: UnaryRow<T>, p: T) -> Var<'g, T> {
        let value = (row.forward)(&self.value(), p);
        Var::record(self.graph, value, Op::Unary { x: self.id, p, row }, &[self.id])
    }
}

/// `∂x = g · f'(v)`, with `v` the input or the output of node `out` as the row says.
pub(crate) fn backward<T: Element>(
    bp: &mut crate::tape::Backprop<'_, T>,
    out: usize,
    x: usize,
    p: T,
    row: &UnaryRow<T>,
    g: Tensor<T>,
) {
    let v = bp.value(match row.uses {
        Uses::Input => x,
        Uses::Output => out,
    });
    let gx = (row.chain)(&g, v, p);
    bp.accumulate(x, gx);
}

/// How the tests exercise a row: the parameter to pass, a shift that moves standard normal
/// inputs into the op's domain (a row with a shift is defined for positive inputs only),
/// and the largest magnitude at which the op and its derivative must stay finite (`exp`
/// overflows by nature above about 88 in `f32`).
#[cfg(test)]
#[derive(Clone, Copy)]
pub(crate) struct Exercise {
    pub param: f64,
    pub shift: f64,
    pub extreme: f64,
}

macro_rules! unary_table {
    (@param) => { T::zero() };
    (@param $p:ident) => { $p };
    (@example) => { 0.0 };
    (@example $pv:expr) => { $pv };
    ($(
        $(#[$doc:meta])*
        $name:ident($($p:ident)?) = |$x:ident| $f:expr;
        d = |$v:ident| $df:expr, from $uses:ident;
        exercise $(p = $pv:expr,)? shift $shift:expr, extreme $extreme:expr;
    )*) => {
        /// The rows, one constructor each (a row is generic over the element type).
        pub(crate) mod rows {
            use super::*;
            $(
                #[doc = concat!("The row of [`Var::", stringify!($name), "`].")]
                pub(crate) fn $name<T: Element>() -> UnaryRow<T> {
                    UnaryRow {
                        name: stringify!($name),
                        uses: Uses::$uses,
                        forward: |t: &Tensor<T>, p: T| {
                            let _ = p;
                            $(#[allow(unused_variables)] let $p = p;)?
                            t.map(#[inline(always)] move |$x: T| $f)
                        },
                        forward_inplace: |t: &mut Tensor<T>, p: T| {
                            let _ = p;
                            $(#[allow(unused_variables)] let $p = p;)?
                            t.map_inplace(#[inline(always)] move |$x: T| $f)
                        },
                        chain: |g: &Tensor<T>, v: &Tensor<T>, p: T| {
                            let _ = p;
                            $(#[allow(unused_variables)] let $p = p;)?
                            g.zip_with(v, #[inline(always)] move |g: T, $v: T| g * $df)
                        },
                    }
                }
            )*
        }

        impl<'g, T: Element> Var<'g, T> {
            $(
                $(#[$doc])*
                pub fn $name(self $(, $p: T)?) -> Var<'g, T> {
                    self.unary(rows::$name::<T>(), unary_table!(@param $($p)?))
                }
            )*
        }

        /// Every row with how the tests exercise it.
        #[cfg(test)]
        pub(crate) fn table<T: Element>() -> Vec<(UnaryRow<T>, Exercise)> {
            vec![$((
                rows::$name::<T>(),
                Exercise {
                    param: unary_table!(@example $($pv)?),
                    shift: $shift,
                    extreme: $extreme,
                },
            )),*]
        }
    };
}

unary_table! {
    /// `-x`.
    neg() = |x| -x;
        d = |_x| -T::one(), from Input;
        exercise shift 0.0, extreme 1e4;
    /// `x + s` for a constant `s`.
    add_scalar(s) = |x| x + s;
        d = |_x| T::one(), from Input;
        exercise p = 2.5, shift 0.0, extreme 1e4;
    /// `x · s` for a constant `s`.
    mul_scalar(s) = |x| x * s;
        d = |_x| s, from Input;
        exercise p = -3.0, shift 0.0, extreme 1e4;
    /// `x^p` for a constant exponent `p` (inputs should be positive unless `p` is whole).
    powf(p) = |x| x.powf(p);
        d = |x| p * x.powf(p - T::one()), from Input;
        exercise p = 2.5, shift 5.0, extreme 1e4;
    /// `x²`.
    square() = |x| x * x;
        d = |x| x + x, from Input;
        exercise shift 0.0, extreme 1e4;
    /// `|x|` (derivative 0 at 0).
    abs() = |x| x.abs();
        d = |x| if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { T::zero() }, from Input;
        exercise shift 0.0, extreme 1e4;
    /// `e^x` (for `f32` within 2 ulp of std, vectorized).
    exp() = |x| x.fast_exp();
        d = |y| y, from Output;
        exercise shift 0.0, extreme 50.0;
    /// Natural logarithm (inputs should be positive).
    log() = |x| x.ln();
        d = |x| x.recip(), from Input;
        exercise shift 5.0, extreme 1e4;
    /// Square root (inputs should be positive).
    sqrt() = |x| x.sqrt();
        d = |y| T::from_f64_lossy(0.5) / y, from Output;
        exercise shift 5.0, extreme 1e4;
    /// `max(x, 0)` (derivative 0 at 0).
    relu() = |x| if x > T::zero() { x } else { T::zero() };
        d = |y| if y > T::zero() { T::one() } else { T::zero() }, from Output;
        exercise shift 0.0, extreme 1e4;
    /// `x` where positive, else `slope · x`.
    leaky_relu(slope) = |x| if x > T::zero() { x } else { slope * x };
        d = |x| if x > T::zero() { T::one() } else { slope }, from Input;
        exercise p = 0.1, shift 0.0, extreme 1e4;
    /// Logistic sigmoid `1 / (1 + e^−x)`, stable at both tails.
    sigmoid() = |x| sigmoid_scalar(x);
        d = |y| y * (T::one() - y), from Output;
        exercise shift 0.0, extreme 1e4;
    /// Hyperbolic tangent (for `f32` within 2 ulp of std, vectorized).
    tanh() = |x| x.fast_tanh();
        d = |y| T::one() - y * y, from Output;
        exercise shift 0.0, extreme 1e4;
    /// `ln(1 + e^x)`, stable at both tails.
    softplus() = |x| softplus_scalar(x);
        d = |x| sigmoid_scalar(x), from Input;
        exercise shift 0.0, extreme 1e4;
    /// `ln sigmoid(x) = −softplus(−x)`, stable at both tails.
    log_sigmoid() = |x| -softplus_scalar(-x);
        d = |x| sigmoid_scalar(-x), from Input;
        exercise shift 0.0, extreme 1e4;
}

#[cfg(test)]
mod tests {
    use tensor::Tensor;

    use super::table;
    use crate::ops::testing::check_with;
    use crate::tape::Graph;

    #[test]
    fn every_row_passes_the_gradient_check() {
        for (row, ex) in table::<f64>() {
            // The op alone, and the op times its input (an input used twice).
            check_with(row.name, |_, x| x[0].unary(row, ex.param), &[&[3, 4]], ex.shift);
            check_with(row.name, |_, x| x[0].unary(row, ex.param) * x[0], &[&[2, 3]], ex.shift);
        }
    }

    #[test]
    fn compositions_and_whole_exponents() {
        check_with("log∘exp", |_, x| x[0].exp().log() * x[0], &[&[2, 3]], 0.0);
        check_with("powf 3 of negatives", |_, x| x[0].powf(3.0), &[&[2, 3]], 0.0);
        check_with("powf −1.5", |_, x| x[0].powf(-1.5) * x[0], &[&[2, 3]], 5.0);
        check_with("square∘mul_scalar", |_, x| x[0].mul_scalar(-1.5).square(), &[&[2, 3]], 0.0);
    }

    #[test]
    fn every_row_is_finite_up_to_its_extreme_inputs_in_f32() {
        for (row, ex) in table::<f32>() {
            let e = ex.extreme as f32;
            let xs = if ex.shift > 0.0 { vec![1e-4, 1.0, e] } else { vec![-e, -50.0, 0.0, 50.0, e] };
            let g = Graph::<f32>::new();
            let x = g.param(Tensor::from_vec(xs.clone(), &[xs.len()]));
            let y = x.unary(row, ex.param as f32);
            let v = y.value().to_vec();
            assert!(v.iter().all(|v| v.is_finite()), "{} at {xs:?}: value {v:?}", row.name);
            let gx = y.sum().backward().get(x).unwrap().to_vec();
            assert!(gx.iter().all(|v| v.is_finite()), "{} at {xs:?}: gradient {gx:?}", row.name);
        }
    }

    #[test]
    fn forward_in_place_matches_forward() {
        let x = Tensor::<f64>::from_vec(vec![-2.0, -0.5, 0.25, 3.0], &[4]).add_scalar(3.0);
        for (row, ex) in table::<f64>() {
            let mut y = x.clone();
            (row.forward_inplace)(&mut y, ex.param);
            assert_eq!(y.to_vec(), (row.forward)(&x, ex.param).to_vec(), "{}", row.name);
        }
    }

    #[test]
    fn rows_have_distinct_names_and_methods_call_their_rows() {
        let rows = table::<f64>();
        let mut names: Vec<&str> = rows.iter().map(|(r, _)| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len());
        let g = Graph::<f64>::new();
        let x = g.constant(Tensor::from_vec(vec![-1.5, 2.0], &[2]));
        assert_eq!(x.leaky_relu(0.1).value().to_vec(), vec![-0.15000000000000002, 2.0]);
        assert_eq!(x.abs().value().to_vec(), vec![1.5, 2.0]);
        assert_eq!(x.square().value().to_vec(), vec![2.25, 4.0]);
        assert_eq!(x.powf(3.0).value().to_vec(), vec![-3.375, 8.0]);
        assert_eq!((-x).value().to_vec(), vec![1.5, -2.0]);
    }
}
