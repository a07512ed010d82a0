//! The bottom layer of the engine: the tape ([`Graph`]) and the handles into it ([`Var`]),
//! the record of how each value was made ([`Op`]), and the gradient store that backward
//! rules write into ([`Backprop`]). The ops (`ops/`) build on this; the reverse walk
//! (`backward.rs`) builds on both. Nothing here knows any op's arithmetic.

use std::cell::{Cell, Ref, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use tensor::{fail, Conv2dSpec, ConvSaved, Dims, Element, Tensor, TensorError};

static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(1);

/// Which value a unary op's derivative is written in terms of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Uses {
    /// `f'(x)`, from the op's input.
    Input,
    /// `f'` as a function of `y = f(x)`, from the op's output (so the input need not be kept).
    Output,
}

/// One row of the unary table (`ops/unary.rs`), as the tape records it: the op's name, its
/// forward kernel (new and in place) and its chain rule `g · f'(v)`, each a function of
/// the op's one constant parameter (unused by most rows). Plain function pointers, so a row
/// is `Copy` and costs the tape no allocation.
#[derive(Clone, Copy)]
pub(crate) struct UnaryRow<T: Element> {
    pub(crate) name: &'static str,
    pub(crate) uses: Uses,
    pub(crate) forward: fn(&Tensor<T>, T) -> Tensor<T>,
    pub(crate) forward_inplace: fn(&mut Tensor<T>, T),
    pub(crate) chain: fn(&Tensor<T>, &Tensor<T>, T) -> Tensor<T>,
}

/// How a value was made: the op and the ids of its inputs (plus any constant it needs).
pub(crate) enum Op<T: Element> {
    Leaf,
    /// A row of the unary table (`ops/unary.rs`) applied to `x` with parameter `p`.
    Unary {
        x: usize,
        p: T,
        row: UnaryRow<T>,
    },
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    MatMul(usize, usize),
    Sum(usize),
    SumAxis {
        x: usize,
        axis: usize,
        keepdim: bool,
    },
    LogSumExp {
        x: usize,
        axis: Option<usize>,
        keepdim: bool,
    },
    Broadcast(usize),
    Reshape(usize),
    Permute(usize, Dims),
    Narrow {
        x: usize,
        axis: usize,
        start: usize,
    },
    Concat {
        xs: Vec<usize>,
        axis: usize,
    },
    BceWithLogits {
        logits: usize,
        target: usize,
    },
    BceWithLogitsSum {
        logits: usize,
        target: usize,
    },
    Linear {
        x: usize,
        w: usize,
        b: Option<usize>,
        act: Option<UnaryRow<T>>,
    },
    /// `saved`: what the forward kept for the weight's gradient, when it takes one.
    Conv2d {
        x: usize,
        w: usize,
        b: Option<usize>,
        spec: Conv2dSpec,
        saved: Option<ConvSaved<T>>,
    },
    ConvTranspose2d {
        x: usize,
        w: usize,
        b: Option<usize>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
        saved: Option<ConvSaved<T>>,
    },
}

impl<T: Element> Op<T> {
    /// The op's name, as error messages and anomaly reports give it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Unary { row, .. } => row.name,
            Op::Add(..) => "add",
            Op::Sub(..) => "sub",
            Op::Mul(..) => "mul",
            Op::Div(..) => "div",
            Op::MatMul(..) => "matmul",
            Op::Sum(..) => "sum",
            Op::SumAxis { .. } => "sum_axis",
            Op::LogSumExp { .. } => "logsumexp",
            Op::Broadcast(..) => "broadcast_to",
            Op::Reshape(..) => "reshape",
            Op::Permute(..) => "permute",
            Op::Narrow { .. } => "narrow",
            Op::Concat { .. } => "concat",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::BceWithLogitsSum { .. } => "bce_with_logits_sum",
            Op::Linear { .. } => "linear",
            Op::Conv2d { .. } => "conv2d",
            Op::ConvTranspose2d { .. } => "conv_transpose2d",
        }
    }

    /// The ids of the op's inputs.
    pub(crate) fn inputs(&self) -> Vec<usize> {
        match *self {
            Op::Leaf => vec![],
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::MatMul(a, b) => vec![a, b],
            Op::BceWithLogits { logits, target } | Op::BceWithLogitsSum { logits, target } => {
                vec![logits, target]
            }
            Op::Linear { x, w, b, .. } | Op::Conv2d { x, w, b, .. } | Op::ConvTranspose2d { x, w, b, .. } => {
                [Some(x), Some(w), b].into_iter().flatten().collect()
            }
            Op::Unary { x, .. }
            | Op::Sum(x)
            | Op::SumAxis { x, .. }
            | Op::LogSumExp { x, .. }
            | Op::Broadcast(x)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow { x, .. } => vec![x],
            Op::Concat { ref xs, .. } => xs.clone(),
        }
    }
}

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
    pub(crate) grad_enabled: bool,
    pub(crate) id: u64,
    pub(crate) detect_anomaly: bool,
    forward_anomaly: Cell<Option<Anomaly>>,
    /// The gradient store of an earlier backward, handed back by [`Graph::recycle`] for the
    /// next one to fill (so a step in steady state allocates none).
    pub(crate) spare_grads: Cell<Vec<Option<Tensor<T>>>>,
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

pub(crate) fn all_finite<T: Element>(t: &Tensor<T>) -> bool {
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
            spare_grads: Cell::new(Vec::new()),
        }
    }

    /// Turns anomaly detection on or off: every op's output, and in backward every gradient
    /// an op's rule produces, is checked for NaN and infinity, and the first offender is
    /// kept ([`forward_anomaly`](Self::forward_anomaly), [`Gradients::anomaly`](crate::Gradients::anomaly)). Costs a
    /// pass over every value; for debugging.
    pub fn set_detect_anomaly(&mut self, on: bool) {
        self.detect_anomaly = on;
    }

    /// Whether anomaly detection is on ([`set_detect_anomaly`](Self::set_detect_anomaly)).
    pub fn anomaly_detection(&self) -> bool {
        self.detect_anomaly
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

    /// Hands the store of a finished backward back to the graph, whose next backward fills
    /// it instead of allocating one (the gradients still in it are dropped).
    pub fn recycle(&self, grads: crate::Gradients<T>) {
        let mut v = grads.into_store();
        v.clear();
        self.spare_grads.set(v);
    }

    /// Forgets every value, keeping the tape's allocation for the next step. Takes `&mut`,
    /// so no [`Var`] of the old tape can outlive it. Trims the storage pool to one step's
    /// worth ([`tensor::trim_storage_pool`]).
    pub fn reset(&mut self) {
        self.nodes.get_mut().clear();
        // The step's buffers are back in the storage pool; keep one step's worth.
        tensor::trim_storage_pool();
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
}

/// The state of one reverse walk: read-only nodes and the gradients gathered so far.
pub(crate) struct Backprop<'a, T: Element> {
    pub(crate) nodes: &'a [Node<T>],
    pub(crate) grads: Vec<Option<Tensor<T>>>,
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

    /// Adds `a·b` to node `id`'s gradient for each `(id, a, b)` given (into the existing
    /// buffer with `beta = 1` when there is one): a product's two operand gradients. When
    /// both are wanted, for two different nodes, on a pool of more than one thread, the two
    /// products run at once (`rayon::join`), each on the whole of its operands; every
    /// product's bits are the same on any pool (`tensor::matmul`), so the gradients are too.
    pub(crate) fn accumulate_matmuls(&mut self, products: [Option<GradProduct<T>>; 2]) {
        match products {
            [Some((i, a, b)), Some((j, c, d))] if i != j && rayon::current_num_threads() > 1 => {
                let (mut gi, mut gj) = (self.grads[i].take(), self.grads[j].take());
                rayon::join(|| add_product(&mut gi, &a, &b), || add_product(&mut gj, &c, &d));
                (self.grads[i], self.grads[j]) = (gi, gj);
            }
            products => {
                for (id, a, b) in products.into_iter().flatten() {
                    add_product(&mut self.grads[id], &a, &b);
                }
            }
        }
    }
}

/// A term of a node's gradient as a product: `(id, a, b)` adds `a·b` to node `id`'s gradient.
pub(crate) type GradProduct<T> = (usize, Tensor<T>, Tensor<T>);

/// Adds `a·b` to the gradient in `slot`: into its buffer with `beta = 1` when it has one.
fn add_product<T: Element>(slot: &mut Option<Tensor<T>>, a: &Tensor<T>, b: &Tensor<T>) {
    match slot {
        Some(g) => g.matmul_acc(T::one(), a, b, T::one()),
        None => *slot = Some(a.matmul(b)),
    }
}
