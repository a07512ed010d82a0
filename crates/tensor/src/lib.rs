//! Strided n-dimensional arrays of `f32` and `f64`.
//!
//! A [`Tensor`] is shared storage plus a [`Layout`] (shape, strides, offset). Views never
//! copy; elementwise operations broadcast like numpy and run a vectorizable contiguous fast
//! path, a strided general path, and rayon above a size threshold; matrix products go
//! through `matrixmultiply` with the operands' strides, split over rayon in blocks of the output.
//!
//! A shape mismatch is a programmer error and panics with one line naming the operation and
//! both shapes. Every operation that can fail on its arguments' shapes, axes or layout also
//! has a `try_` form returning [`Result`]: constructors from data or parts, views,
//! broadcasting arithmetic ([`try_zip_with`](Tensor::try_zip_with),
//! [`try_zip_inplace`](Tensor::try_zip_inplace); the `std::ops` operators such as `&a + &b`
//! panic, as operators must), products, reductions over an axis, convolutions,
//! [`try_item`](Tensor::try_item), [`try_clamp`](Tensor::try_clamp). The constructors of
//! a new tensor from a shape alone (`zeros`, `randn`, …) panic only when its element count
//! overflows `isize` or the memory cannot be had; [`try_full`](Tensor::try_full) is their
//! fallible form.
//!
//! Safe code cannot reach memory outside a tensor's storage or get a wrapped size: every
//! [`Layout`] is checked with checked arithmetic when it is made (element count, strides,
//! offset and last index within `isize`), every tensor's layout is checked against its
//! storage, and every size an operation computes from its operands is checked before it is
//! used. Raw pointers and `unsafe` appear only in one private module, `simd`: the GEMM call,
//! the SIMD paths of the product kernels of our own, and the functions compiled for the
//! vector instructions the CPU is found to have at run time ([`vectorized`]).
//!
//! ```
//! use tensor::Tensor;
//! let x = Tensor::<f32>::from_vec(vec![1., 2., 3., 4., 5., 6.], &[2, 3]);
//! let b = Tensor::from_vec(vec![10., 20., 30.], &[3]);
//! let y = &x + &b; // broadcast over rows
//! assert_eq!(y.to_vec(), vec![11., 22., 33., 14., 25., 36.]);
//! assert_eq!(y.sum_axis(0, false).to_vec(), vec![25., 47., 69.]);
//! ```
#![warn(missing_docs)]
// Raw pointers and `unsafe` are confined to the `simd` module; the compiler holds us to it.
#![deny(unsafe_code)]

mod conv;
mod element;
mod elementwise;
mod error;
mod fastmath;
mod kernels;
mod layout;
use simd::matmul;
mod pool;
mod reduce;
#[allow(unsafe_code)]
mod simd;
mod tensor;
mod workers;

pub use conv::{Conv2dSpec, ConvGrads, ConvSaved, ConvWants};
pub use element::{DType, Element};
pub use elementwise::{sigmoid_scalar, softplus_scalar};
pub use error::{fail, ok, Result, TensorError};
pub use layout::{broadcast_shapes, checked_len, contiguous_strides, try_contiguous_strides, Dims, Layout};
pub use simd::{vectorized, VectorLoop};
pub use tensor::Tensor;
pub use workers::{with_workers_awake, AWAKE_IDLE};

/// What tests and benchmarks look at inside the crate: thresholds, counters and the raw
/// kernels. Not part of the API (it may change with any release); the feature `internals`
/// turns it on.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::fastmath::{exp_f32, softplus_tail_f32, tanh_f32};
    pub use crate::kernels::{parallel, PAR_MIN_LEN};
    pub use crate::matmul::{gemm_calls, gemm_slices, OWN_SPLIT_MIN_MACS, PAR_MIN_MACS};
    pub use crate::reduce::sum_slice;
    pub use crate::simd::{adam_bandwidth, fma_peak, limit as limit_path, Path};
}

/// Frees the pooled tensor buffers (of both element types) that the work since the last
/// call did not ask for, keeping one step's worth for the next step. [`Tensor`]s take their
/// storage from a process-wide pool of recycled buffers and give it back when dropped;
/// `autograd::Graph::reset` calls this once a step. Calling it is never needed for
/// correctness, only to bound what the pool keeps.
pub fn trim_storage_pool() {
    pool::trim::<f32>();
    pool::trim::<f64>();
}
