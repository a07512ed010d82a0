//! Named elementwise operations: unary math, binary arithmetic with numpy broadcasting,
//! comparisons giving 0/1 masks, scalar forms, in-place forms and operator overloads.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::kernels::{map, map_assign, zip, zip_assign};
use crate::tensor::Tensor;

/// `ln(1 + e^x)` without overflow for large `x` or loss of precision for very negative `x`.
#[inline(always)]
pub fn softplus_scalar<T: Element>(x: T) -> T {
    x.max(T::zero()) + x.fast_softplus_tail()
}

/// `1 / (1 + e^-x)`, finite for every finite `x`.
#[inline(always)]
pub fn sigmoid_scalar<T: Element>(x: T) -> T {
    // e^−|x| never overflows; both branches share it, so the select vectorizes.
    let e = (-x.abs()).fast_exp();
    let r = T::one() / (T::one() + e);
    if x >= T::zero() {
        r
    } else {
        e * r
    }
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl<T: Element> Tensor<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Tensor<T> {
                    map(self, #[inline(always)] |$x: T| $body)
                }
            )*
        }
    };
}

unary_ops! {
    /// `e^x` (for `f32` within 2 ulp of std, vectorized).
    exp => |x| x.fast_exp();
    /// Natural logarithm.
    ln => |x| x.ln();
    /// Square root.
    sqrt => |x| x.sqrt();
    /// Absolute value.
    abs => |x| x.abs();
    /// `max(x, 0)`.
    relu => |x| if x > T::zero() { x } else { T::zero() };
    /// Logistic sigmoid, stable at both tails.
    sigmoid => |x| sigmoid_scalar(x);
    /// Hyperbolic tangent (for `f32` within 2 ulp of std, vectorized).
    tanh => |x| x.fast_tanh();
    /// `ln(1 + e^x)`, stable at both tails.
    softplus => |x| softplus_scalar(x);
    /// `ln(sigmoid(x)) = -softplus(-x)`, stable at both tails.
    log_sigmoid => |x| -softplus_scalar(-x);
    /// `x²`.
    square => |x| x * x;
    /// `1/x`.
    recip => |x| x.recip();
}

impl<T: Element> Tensor<T> {
    /// Natural logarithm (an alias of [`ln`](Self::ln)).
    pub fn log(&self) -> Tensor<T> {
        self.ln()
    }

    /// `x^p`.
    pub fn powf(&self, p: T) -> Tensor<T> {
        map(self, |x| x.powf(p))
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: T) -> Tensor<T> {
        map(self, |x| x + s)
    }

    /// `x * s`.
    pub fn mul_scalar(&self, s: T) -> Tensor<T> {
        map(self, |x| x * s)
    }

    /// Clamps every element to `[lo, hi]`; a NaN element stays NaN (as `f32::clamp`).
    /// Panics unless `lo <= hi` (so a NaN bound panics too).
    #[track_caller]
    pub fn clamp(&self, lo: T, hi: T) -> Tensor<T> {
        ok(self.try_clamp(lo, hi))
    }

    /// Fallible [`clamp`](Self::clamp).
    pub fn try_clamp(&self, lo: T, hi: T) -> Result<Tensor<T>> {
        if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) {
            return Err(TensorError::Invalid {
                op: "clamp",
                msg: format!("bounds [{lo}, {hi}] are not ordered"),
            });
        }
        // Comparisons with NaN are false, so a NaN element falls through unchanged.
        Ok(map(self, |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }))
    }

    /// A new tensor `f(x)` for every element (contiguous; parallel when large).
    pub fn map<F: Fn(T) -> T + Sync>(&self, f: F) -> Tensor<T> {
        map(self, f)
    }

    /// A new tensor `f(a, b)` over the broadcast of both shapes. Panics if they do not
    /// broadcast.
    #[track_caller]
    pub fn zip_with<F: Fn(T, T) -> T + Sync>(&self, rhs: &Tensor<T>, f: F) -> Tensor<T> {
        ok(self.try_zip_with(rhs, f))
    }

    /// Fallible [`zip_with`](Self::zip_with): an error when the shapes do not broadcast.
    pub fn try_zip_with<F: Fn(T, T) -> T + Sync>(&self, rhs: &Tensor<T>, f: F) -> Result<Tensor<T>> {
        zip("zip_with", self, rhs, f)
    }

    // ------------------------------------------------------------ in place

    /// `self[i] = f(self[i])` in place.
    pub fn map_inplace<F: Fn(T) -> T + Sync + Send>(&mut self, f: F) {
        map_assign(self, f)
    }

    /// `self[i] = f(self[i], rhs[i])` in place, `rhs` broadcast to `self`'s shape. Panics
    /// when it does not broadcast.
    #[track_caller]
    pub fn zip_inplace<F: Fn(T, T) -> T + Sync + Send>(&mut self, rhs: &Tensor<T>, f: F) {
        ok(self.try_zip_inplace(rhs, f))
    }

    /// Fallible [`zip_inplace`](Self::zip_inplace) (and so of [`add_assign_t`](Self::add_assign_t)
    /// and [`axpy`](Self::axpy), which are two of its functions): `self` is unchanged on error.
    pub fn try_zip_inplace<F: Fn(T, T) -> T + Sync + Send>(&mut self, rhs: &Tensor<T>, f: F) -> Result<()> {
        zip_assign(self, rhs, f)
    }

    /// `self += rhs` in place, `rhs` broadcast to `self`'s shape.
    #[track_caller]
    pub fn add_assign_t(&mut self, rhs: &Tensor<T>) {
        ok(zip_assign(self, rhs, |a, b| a + b))
    }

    /// `self += alpha * x` in place (BLAS `axpy`), `x` broadcast to `self`'s shape.
    #[track_caller]
    pub fn axpy(&mut self, alpha: T, x: &Tensor<T>) {
        ok(zip_assign(self, x, move |a, b| a + alpha * b))
    }

    /// `self *= alpha` in place.
    pub fn scale_inplace(&mut self, alpha: T) {
        map_assign(self, move |a| a * alpha)
    }

    /// Sets every element to `v` in place.
    pub fn fill(&mut self, v: T) {
        map_assign(self, move |_| v)
    }
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident, $try_name:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl<T: Element> Tensor<T> {
            $(
                $(#[$doc])*
                ///
                /// Shapes broadcast as in numpy; panics (naming both shapes) if they cannot.
                #[track_caller]
                pub fn $name(&self, rhs: &Tensor<T>) -> Tensor<T> {
                    ok(self.$try_name(rhs))
                }

                #[doc = concat!("Fallible [`", stringify!($name), "`](Self::", stringify!($name), ").")]
                pub fn $try_name(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
                    zip(stringify!($name), self, rhs, #[inline(always)] |$a: T, $b: T| $body)
                }
            )*
        }
    };
}

binary_ops! {
    /// `a + b`.
    add, try_add => |a, b| a + b;
    /// `a - b`.
    sub, try_sub => |a, b| a - b;
    /// `a * b`.
    mul, try_mul => |a, b| a * b;
    /// `a / b`.
    div, try_div => |a, b| a / b;
    /// `max(a, b)`.
    maximum, try_maximum => |a, b| a.max(b);
    /// `min(a, b)`.
    minimum, try_minimum => |a, b| a.min(b);
    /// 1 where `a > b`, else 0.
    gt, try_gt => |a, b| if a > b { T::one() } else { T::zero() };
    /// 1 where `a >= b`, else 0.
    ge, try_ge => |a, b| if a >= b { T::one() } else { T::zero() };
    /// 1 where `a < b`, else 0.
    lt, try_lt => |a, b| if a < b { T::one() } else { T::zero() };
    /// 1 where `a <= b`, else 0.
    le, try_le => |a, b| if a <= b { T::one() } else { T::zero() };
    /// 1 where `a == b`, else 0.
    eq_mask, try_eq_mask => |a, b| if a == b { T::one() } else { T::zero() };
}

macro_rules! operator {
    ($tr:ident, $m:ident, $name:ident) => {
        impl<T: Element> $tr<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $m(self, rhs: &Tensor<T>) -> Tensor<T> {
                self.$name(rhs)
            }
        }
        impl<T: Element> $tr<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $m(self, rhs: Tensor<T>) -> Tensor<T> {
                (&self).$name(&rhs)
            }
        }
    };
}

operator!(Add, add, add);
operator!(Sub, sub, sub);
operator!(Mul, mul, mul);
operator!(Div, div, div);

impl<T: Element> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        map(self, |x| -x)
    }
}

impl<T: Element> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        -&self
    }
}
