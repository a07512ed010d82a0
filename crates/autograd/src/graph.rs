//! The tape ([`Graph`]), the handles into it ([`Var`]), and the reverse walk that turns a
//! scalar's tape into [`Gradients`].

use std::cell::{Cell, Ref, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use tensor::{fail, Dims, Element, Tensor, TensorError};

use crate::ops::{self, Op};

static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(1);

/// One recorded value: the tensor, how it was made, and whether gradients flow to it.
pub(crate) struct Node<T: Element> {
    pub(crate) value: Tensor<T>,
    pub(crate) op: Op<T>,
    pub(crate) requires_grad: bool,
}

/// A tape: an arena of values in creation order, each with the op that made it.
///
/// Build one per training step, call [`Var::backward`] on the loss, and drop it (or
/// [`reset`](Graph::reset) it, which keeps its allocation) so memory never grows across steps.
/// Parameters live outside the tape and enter it as leaves through [`Graph::param`].
///
/// ```
/// use autograd::Graph;
/// use tensor::Tensor;
/// let g = Graph::<f64>::new();
/// let x = g.param(Tensor::from_vec(vec![1.0, 2.0], &[2]));
/// let y = (x * x).sum(); // x used twice: contributions add up
/// let grads = y.backward();
/// assert_eq!(grads.get(x).unwrap().to_vec(), vec![2.0, 4.0]);
/// ```
pub struct Graph<T: Element> {
    nodes: RefCell<Vec<Node<T>>>,
    grad_enabled: bool,
    id: u64,
    detect_anomaly: bool,
    forward_anomaly: Cell<Option<Anomaly>>,
}

/// Which pass an [`Anomaly`] was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The op's output value was not finite.
    Forward,
    /// The op's backward rule produced a non-finite gradient for one of its inputs.
    Backward,
}

/// The first op that produced a NaN or infinity, found in anomaly-detection mode (like
/// `torch.autograd.detect_anomaly`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The node's id on the tape.
    pub node: usize,
    /// The op's name (`exp`, `matmul`, …).
    pub op: &'static str,
    /// Where it was found.
    pub pass: Pass,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pass {
            Pass::Forward if self.op == "leaf" => {
                write!(f, "leaf node {} (an input or parameter) holds a non-finite value", self.node)
            }
            Pass::Forward => {
                write!(
                    f,
                    "op `{}` (node {}) produced the first non-finite value in the forward pass",
                    self.op, self.node
                )
            }
            Pass::Backward => write!(
                f,
                "the backward rule of op `{}` (node {}) produced the first non-finite gradient",
                self.op, self.node
            ),
        }
    }
}

fn all_finite<T: Element>(t: &Tensor<T>) -> bool {
    t.to_vec().iter().all(|v| v.is_finite())
}

impl<T: Element> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Graph<T> {
    /// An empty tape that records ops for a backward pass.
    pub fn new() -> Self {
        Graph {
            nodes: RefCell::new(Vec::new()),
            grad_enabled: true,
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            detect_anomaly: false,
            forward_anomaly: Cell::new(None),
        }
    }

    /// Turns anomaly detection on or off: every op's output, and in backward every gradient
    /// an op's rule produces, is checked for NaN and infinity, and the first offender is
    /// kept ([`forward_anomaly`](Self::forward_anomaly), [`Gradients::anomaly`]). Costs a
    /// pass over every value; for debugging.
    pub fn set_detect_anomaly(&mut self, on: bool) {
        self.detect_anomaly = on;
    }

    /// The first op whose output was not finite, when anomaly detection is on.
    pub fn forward_anomaly(&self) -> Option<Anomaly> {
        self.forward_anomaly.get()
    }

    /// A graph in no-grad mode: values are computed but nothing is recorded for backward,
    /// and [`Var::backward`] panics. Use it for evaluation.
    pub fn no_grad() -> Self {
        Graph { grad_enabled: false, ..Self::new() }
    }

    /// True unless this graph was made by [`Graph::no_grad`].
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// Number of values recorded so far.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every value, keeping the tape's allocation for the next step. Takes `&mut`,
    /// so no [`Var`] of the old tape can outlive it.
    pub fn reset(&mut self) {
        self.nodes.get_mut().clear();
        self.forward_anomaly.set(None);
        self.id = NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed);
    }

    /// A leaf that gradients flow to (a parameter or an input to differentiate by). The
    /// tensor is shared, not copied.
    pub fn param(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(value, Op::Leaf, self.grad_enabled)
    }

    /// A leaf that gradients do not flow to (data, constants, noise).
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push(value, Op::Leaf, false)
    }

    pub(crate) fn push(&self, value: Tensor<T>, op: Op<T>, requires_grad: bool) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        let id = nodes.len();
        if self.detect_anomaly && self.forward_anomaly.get().is_none() && !all_finite(&value) {
            self.forward_anomaly.set(Some(Anomaly { node: id, op: op.name(), pass: Pass::Forward }));
        }
        let op = if requires_grad { op } else { Op::Leaf };
        nodes.push(Node { value, op, requires_grad });
        Var { id, graph: self }
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Vec<Node<T>>> {
        self.nodes.borrow()
    }
}

/// A handle to a value on a [`Graph`]: a node id and a reference to the graph. `Copy`, so it
/// can be used any number of times; operators work on values and references alike.
#[derive(Clone, Copy)]
pub struct Var<'g, T: Element> {
    pub(crate) id: usize,
    pub(crate) graph: &'g Graph<T>,
}

impl<T: Element> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var#{}{:?}", self.id, self.shape().as_slice())
    }
}

impl<'g, T: Element> Var<'g, T> {
    /// The node's position on its tape.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The tape this value lives on.
    pub fn graph(&self) -> &'g Graph<T> {
        self.graph
    }

    /// The value (a cheap shared handle, not a copy).
    pub fn value(&self) -> Tensor<T> {
        self.graph.nodes()[self.id].value.clone()
    }

    /// The value's shape.
    pub fn shape(&self) -> Dims {
        self.graph.nodes()[self.id].value.shape().into()
    }

    /// Whether gradients flow to this value.
    pub fn requires_grad(&self) -> bool {
        self.graph.nodes()[self.id].requires_grad
    }

    /// The same value as a new leaf that gradients do not flow through.
    pub fn detach(self) -> Var<'g, T> {
        self.graph.constant(self.value())
    }

    /// Records `value`, made by `op` from `inputs`; gradients flow when any input takes them.
    pub(crate) fn record(graph: &'g Graph<T>, value: Tensor<T>, op: Op<T>, inputs: &[usize]) -> Var<'g, T> {
        let requires_grad = graph.grad_enabled && {
            let nodes = graph.nodes();
            inputs.iter().any(|&i| nodes[i].requires_grad)
        };
        graph.push(value, op, requires_grad)
    }

    /// Panics unless `other` lives on the same tape.
    #[track_caller]
    pub(crate) fn same_graph(&self, op: &'static str, other: &Var<'g, T>) {
        if !std::ptr::eq(self.graph, other.graph) || self.graph.id != other.graph.id {
            fail(TensorError::Invalid { op, msg: "operands belong to different graphs (tapes)".into() });
        }
    }

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
        let mut bp = Backprop { nodes: &nodes, grads: (0..=self.id).map(|_| None).collect() };
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

/// The state of one reverse walk: read-only nodes and the gradients gathered so far.
pub(crate) struct Backprop<'a, T: Element> {
    nodes: &'a [Node<T>],
    grads: Vec<Option<Tensor<T>>>,
}

impl<T: Element> Backprop<'_, T> {
    /// The forward value of node `id`.
    pub(crate) fn value(&self, id: usize) -> &Tensor<T> {
        &self.nodes[id].value
    }

    /// Whether node `id` wants a gradient.
    pub(crate) fn needs(&self, id: usize) -> bool {
        self.nodes[id].requires_grad
    }

    /// Adds `grad` to node `id`'s gradient (`grad` must have the node's shape).
    pub(crate) fn accumulate(&mut self, id: usize, grad: Tensor<T>) {
        debug_assert_eq!(grad.shape(), self.nodes[id].value.shape(), "gradient shape of node {id}");
        match &mut self.grads[id] {
            Some(g) => g.add_assign_t(&grad),
            slot @ None => *slot = Some(grad),
        }
    }

    /// Adds `a·b` to node `id`'s gradient; into the existing buffer with `beta = 1` when
    /// there is one.
    pub(crate) fn accumulate_matmul(&mut self, id: usize, a: &Tensor<T>, b: &Tensor<T>) {
        match &mut self.grads[id] {
            Some(g) => g.matmul_acc(T::one(), a, b, T::one()),
            slot @ None => *slot = Some(a.matmul(b)),
        }
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
