//! The reverse walk: from a scalar on the tape back to its leaves, running each op's
//! backward rule (`ops/`) over the tape and gradient store (`tape.rs`), into [`Gradients`].

use tensor::{fail, Element, Tensor, TensorError};

use crate::ops;
use crate::tape::{all_finite, Anomaly, Backprop, Op, Pass, Var};

impl<T: Element> Var<'_, T> {
    /// Reverse mode from this scalar (seed gradient 1). Panics, naming the shape, if the
    /// value is not a scalar (one element); use [`backward_with`](Self::backward_with) then.
    #[track_caller]
    pub fn backward(self) -> Gradients<T> {
        let shape = self.shape();
        if shape.iter().product::<usize>() != 1 {
            fail(TensorError::Invalid {
                op: "backward",
                msg: format!(
                    "called on a value of shape {:?}, not a scalar; reduce it first or pass a seed gradient to backward_with",
                    shape.as_slice()
                ),
            });
        }
        self.backward_with(Tensor::ones(&shape))
    }

    /// Reverse mode with an explicit seed gradient of this value's shape.
    #[track_caller]
    pub fn backward_with(self, seed: Tensor<T>) -> Gradients<T> {
        if !self.graph.grad_enabled {
            fail(TensorError::Invalid { op: "backward", msg: "the graph is in no-grad mode".into() });
        }
        let nodes = self.graph.nodes();
        if seed.shape() != nodes[self.id].value.shape() {
            fail(TensorError::ShapeMismatch {
                op: "backward_with",
                lhs: nodes[self.id].value.shape().to_vec(),
                rhs: seed.shape().to_vec(),
            });
        }
        let mut store = self.graph.spare_grads.take();
        store.clear();
        store.resize_with(self.id + 1, || None);
        let mut bp = Backprop { nodes: &nodes, grads: store };
        bp.grads[self.id] = Some(seed);
        let mut anomaly = None;
        for id in (0..=self.id).rev() {
            let node = &nodes[id];
            if !node.requires_grad || matches!(node.op, Op::Leaf) {
                continue;
            }
            // An interior gradient is consumed here: nothing reads it again.
            let Some(grad_out) = bp.grads[id].take() else { continue };
            ops::backward(&mut bp, id, &node.op, grad_out);
            if self.graph.detect_anomaly && anomaly.is_none() {
                let bad = node
                    .op
                    .inputs()
                    .into_iter()
                    .any(|i| bp.grads[i].as_ref().is_some_and(|g| !all_finite(g)));
                if bad {
                    anomaly = Some(Anomaly { node: id, op: node.op.name(), pass: Pass::Backward });
                }
            }
        }
        let mut grads = bp.grads;
        grads.resize_with(nodes.len(), || None);
        for g in grads.iter_mut().flatten() {
            if !g.is_contiguous() {
                *g = g.contiguous();
            }
        }
        Gradients { graph_id: self.graph.id, grads, anomaly }
    }
}

/// Gradients from one backward pass, one per value that takes them. Interior values'
/// gradients are consumed during the walk; leaves' remain.
pub struct Gradients<T: Element> {
    graph_id: u64,
    grads: Vec<Option<Tensor<T>>>,
    anomaly: Option<Anomaly>,
}

impl<T: Element> Gradients<T> {
    /// In anomaly-detection mode, the first op (in backward order) whose rule produced a
    /// non-finite gradient.
    pub fn anomaly(&self) -> Option<Anomaly> {
        self.anomaly
    }

    /// The store itself, for [`Graph::recycle`](crate::Graph::recycle).
    pub(crate) fn into_store(self) -> Vec<Option<Tensor<T>>> {
        self.grads
    }

    /// The gradient of the loss with respect to `var`, or `None` if no gradient reached it.
    /// Panics if `var` belongs to another tape.
    #[track_caller]
    pub fn get(&self, var: Var<'_, T>) -> Option<&Tensor<T>> {
        self.check(var);
        self.grads.get(var.id).and_then(Option::as_ref)
    }

    /// Takes the gradient out of the store (no copy).
    #[track_caller]
    pub fn take(&mut self, var: Var<'_, T>) -> Option<Tensor<T>> {
        self.check(var);
        self.grads.get_mut(var.id).and_then(Option::take)
    }

    /// The gradient of `var`, or zeros of its shape when none reached it.
    #[track_caller]
    pub fn get_or_zeros(&self, var: Var<'_, T>) -> Tensor<T> {
        self.get(var).cloned().unwrap_or_else(|| Tensor::zeros(&var.shape()))
    }

    #[track_caller]
    fn check(&self, var: Var<'_, T>) {
        if var.graph.id != self.graph_id {
            fail(TensorError::Invalid {
                op: "Gradients::get",
                msg: "the value belongs to another graph".into(),
            });
        }
    }
}
