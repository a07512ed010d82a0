//! Tape-based reverse-mode automatic differentiation over [`tensor::Tensor`].
//!
//! A [`Graph`] records every value in creation order; a [`Var`] is a `Copy` handle into it
//! with operator overloading. [`Var::backward`] walks the tape in reverse, adds up the
//! contributions of values used more than once, and returns [`Gradients`]. Every unary
//! elementwise op is one row of the table in `ops/unary.rs` (forward, derivative, and
//! whether the derivative reads the input or the output); every other op lives in its own
//! file under `ops/` with its forward, backward rule and gradient check. [`gradcheck`]
//! compares any function's gradients with finite differences.
//!
//! Imports run one way: `tape.rs` (the graph, nodes, the `Op` record and the
//! gradient store) knows no op; `ops/` builds on it; `backward.rs` (the reverse walk) calls
//! the ops' rules.
//!
//! ```
//! use autograd::Graph;
//! use tensor::Tensor;
//!
//! let g = Graph::<f64>::new();
//! let w = g.param(Tensor::from_vec(vec![0.5, -1.0], &[1, 2])); // [out, in]
//! let x = g.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
//! let logits = x.matmul(w.t()); // [2, 1]
//! let target = g.constant(Tensor::from_vec(vec![1.0, 0.0], &[2, 1]));
//! let loss = logits.bce_with_logits(target).sum();
//! let grads = loss.backward();
//! assert_eq!(grads.get(w).unwrap().shape(), &[1, 2]);
//! assert!(grads.get(x).is_none()); // constants take no gradient
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// `Var::add` and friends are the named forms of the operators, which are implemented too.
#![allow(clippy::should_implement_trait)]

mod backward;
mod gradcheck;
mod ops;
mod tape;

pub use backward::Gradients;
pub use gradcheck::{gradcheck, GradcheckConfig, GradcheckMode, GradcheckReport, Worst};
pub use ops::Activation;
pub use tape::{Anomaly, Graph, Pass, Var};
