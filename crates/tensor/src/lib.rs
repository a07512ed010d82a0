//! Strided n-dimensional arrays of `f32` and `f64`.
//!
//! A [`Tensor`] is shared storage plus a [`Layout`] (shape, strides, offset). Views never
//! copy; elementwise operations broadcast like numpy and run a vectorizable contiguous fast
//! path, a strided general path, and rayon above a size threshold; matrix products go
//! through `matrixmultiply` with the operands' strides, split over rayon in blocks of the output.
//!
//! A shape mismatch is a programmer error and panics with one line naming the operation and
//! both shapes; every such operation also has a `try_` form returning [`Result`].
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
// Raw pointers are confined to the GEMM call in `matmul.rs`; the compiler holds us to it.
#![deny(unsafe_code)]

mod conv;
mod element;
mod elementwise;
mod error;
pub mod fastmath;
mod kernels;
mod layout;
#[allow(unsafe_code)]
mod matmul;
mod pool;
mod reduce;
mod tensor;

pub use conv::{Conv2dSpec, ConvGrads, ConvSaved, ConvWants};
pub use element::{DType, Element};
pub use elementwise::{sigmoid_scalar, softplus_scalar};
pub use error::{fail, ok, Result, TensorError};
pub use kernels::{parallel, PAR_MIN_LEN};
pub use layout::{broadcast_shapes, contiguous_strides, Dims, Layout};
pub use matmul::{gemm_calls, gemm_rowmajor, PAR_MIN_MACS};
pub use reduce::sum_slice;
pub use tensor::Tensor;

/// Frees the pooled tensor buffers (of both element types) that the work since the last
/// call did not ask for, keeping one step's worth for the next step. [`Tensor`]s take their
/// storage from a process-wide pool of recycled buffers and give it back when dropped;
/// `autograd::Graph::reset` calls this once a step. Calling it is never needed for
/// correctness, only to bound what the pool keeps.
pub fn trim_storage_pool() {
    pool::trim::<f32>();
    pool::trim::<f64>();
}
