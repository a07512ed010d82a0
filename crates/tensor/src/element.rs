//! The sealed [`Element`] trait: the scalar types a [`Tensor`](crate::Tensor) may hold.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use num_traits::{Float, FromPrimitive};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The name of an element type, as checkpoints and error messages spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

/// A floating-point element type: `f32` or `f64`. Sealed: no other type can implement it.
///
/// Besides the arithmetic of [`num_traits::Float`], it carries the GEMM routine of
/// `matrixmultiply` for its precision and the product kernels of our own it has (a sealed
/// supertrait implemented in the `simd::matmul` module, inside `simd`, where the crate's only
/// `unsafe` code is).
pub trait Element:
    Float
    + FromPrimitive
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
    + sealed::Sealed
    + crate::matmul::Gemm
    + crate::pool::Pooled
{
    /// The runtime tag of this type.
    const DTYPE: DType;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64_lossy(v: f64) -> Self;

    /// Widens (or keeps) to `f64`.
    fn to_f64_lossless(self) -> f64;

    /// `e^x` as the elementwise kernels compute it: for `f32` a vectorizable approximation
    /// within 2 ulp (`fastmath.rs`), for `f64` std's.
    fn fast_exp(self) -> Self;

    /// `ln(1 + e^(−|x|))` (softplus without its `max(x, 0)`) as the kernels compute it: for
    /// `f32` a vectorizable approximation within 2 ulp
    /// (`fastmath.rs`), for `f64` std's `exp` and `ln_1p`.
    fn fast_softplus_tail(self) -> Self;

    /// `tanh x` as the kernels compute it: for `f32` a vectorizable approximation within
    /// 2 ulp (`fastmath.rs`), for `f64` std's.
    fn fast_tanh(self) -> Self;
}

macro_rules! element {
    ($t:ty, $dtype:ident, $exp:expr, $softplus_tail:expr, $tanh:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;

            #[inline]
            fn from_f64_lossy(v: f64) -> Self {
                v as $t
            }

            #[inline]
            fn to_f64_lossless(self) -> f64 {
                self as f64
            }

            #[inline(always)]
            fn fast_exp(self) -> Self {
                $exp(self)
            }

            #[inline(always)]
            fn fast_softplus_tail(self) -> Self {
                $softplus_tail(self)
            }

            #[inline(always)]
            fn fast_tanh(self) -> Self {
                $tanh(self)
            }
        }
    };
}

element!(f32, F32, crate::fastmath::exp_f32, crate::fastmath::softplus_tail_f32, crate::fastmath::tanh_f32);
element!(f64, F64, f64::exp, |x: f64| (-x.abs()).exp().ln_1p(), f64::tanh);
