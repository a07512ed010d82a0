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
mod reduce;
mod tensor;

pub use conv::{Conv2dSpec, ConvGrads, ConvSaved, ConvWants};
pub use element::{DType, Element};
pub use elementwise::{sigmoid_scalar, softplus_scalar};
pub use error::{fail, ok, Result, TensorError};
pub use kernels::{parallel, PAR_MIN_LEN};
pub use layout::{broadcast_shapes, contiguous_strides, Dims, Layout};
pub use matmul::{gemm_rowmajor, PAR_MIN_MACS};
pub use reduce::sum_slice;
pub use tensor::Tensor;
