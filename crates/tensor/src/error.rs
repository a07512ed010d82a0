//! Errors of fallible tensor operations and the one panic helper behind the infallible forms.

use thiserror::Error;

/// Why a tensor operation could not be carried out.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TensorError {
    /// Two operands whose shapes do not fit the operation.
    #[error("{op}: shapes {lhs:?} and {rhs:?} do not match")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Vec<usize>,
        /// Shape of the second operand (or the requested shape).
        rhs: Vec<usize>,
    },
    /// A buffer whose length is not the product of the shape.
    #[error("{op}: shape {shape:?} needs {expected} elements, got {got}")]
    LengthMismatch {
        /// The operation.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        got: usize,
    },
    /// An axis at or beyond the rank.
    #[error("{op}: axis {axis} is out of range for a tensor of shape {shape:?}")]
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// Any other invalid argument, explained in words.
    #[error("{op}: {msg}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
}

/// Result of a fallible tensor operation.
pub type Result<T> = std::result::Result<T, TensorError>;

/// Panics with the error's message. The infallible forms of every fallible operation end
/// here, so that a misuse panics with one clear line pointing at the caller.
#[cold]
#[inline(never)]
#[track_caller]
pub fn fail(err: TensorError) -> ! {
    panic!("{err}")
}

/// Unwraps a tensor result, panicking at the caller's location with the error's message.
#[track_caller]
#[inline]
pub fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(e),
    }
}
