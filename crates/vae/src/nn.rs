//! Named parameters, PyTorch's initialization, and the linear layer.

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::uniform::SampleUniform;
use smallvec::SmallVec;
use tensor::{Conv2dSpec, Element, Tensor};

use crate::config::Activation;

/// An ordered set of named parameter tensors, named as a PyTorch `state_dict` would name them
/// (`fc1.weight`, `fc1.bias`, …). Lives outside any tape.
#[derive(Clone, Debug, Default)]
pub struct ParamSet<T: Element> {
    names: Vec<String>,
    tensors: Vec<Tensor<T>>,
}

impl<T: Element> ParamSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        ParamSet { names: Vec::new(), tensors: Vec::new() }
    }

    /// Appends a parameter and returns its index.
    pub fn push(&mut self, name: impl Into<String>, t: Tensor<T>) -> usize {
        self.names.push(name.into());
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(Tensor::len).sum()
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[Tensor<T>] {
        &self.tensors
    }

    /// The tensors, mutably (for optimizers and loading).
    pub fn tensors_mut(&mut self) -> &mut [Tensor<T>] {
        &mut self.tensors
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.names.iter().position(|n| n == name).map(|i| &self.tensors[i])
    }

    /// Registers every parameter on `graph` as a leaf that takes gradients (shared, not
    /// copied), in order.
    pub fn bind<'g>(&self, graph: &'g Graph<T>) -> VarList<'g, T> {
        self.tensors.iter().map(|t| graph.param(t.clone())).collect()
    }
}

/// Most models' parameters fit in this many inline slots of a [`VarList`] or
/// [`TensorList`]; a model with more spills to the heap.
pub const INLINE_PARAMS: usize = 32;

/// The parameters of a model on one tape, in order: inline up to [`INLINE_PARAMS`] (a step
/// allocates nothing for them).
pub type VarList<'g, T> = SmallVec<[Var<'g, T>; INLINE_PARAMS]>;

/// One tensor per parameter, in order (the gradients of a step), inline like [`VarList`].
pub type TensorList<T> = SmallVec<[Tensor<T>; INLINE_PARAMS]>;

/// The value of a build that cannot fail (its tensors come from an initializer).
pub(crate) fn infallible<V>(built: Result<V, std::convert::Infallible>) -> V {
    match built {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// Draws a tensor uniform on `±1/√fan_in`: PyTorch's `nn.Linear` initialization of both the
/// weight and the bias.
pub fn pytorch_uniform<T: Element + SampleUniform, R: Rng + ?Sized>(
    shape: &[usize],
    fan_in: usize,
    rng: &mut R,
) -> Tensor<T> {
    let bound = T::from_f64_lossy(1.0 / (fan_in.max(1) as f64).sqrt());
    Tensor::rand_uniform(shape, -bound, bound, rng)
}

/// A weight uniform on `±√(6/(fan_in + fan_out))` (Glorot & Bengio): for a `[out, in]`
/// matrix the fans are `in` and `out`, for a convolution's `[a, b, k, k]` kernel (PyTorch's
/// `xavier_uniform_`) `b·k·k` and `a·k·k`.
pub fn glorot_uniform<T: Element + SampleUniform, R: Rng + ?Sized>(
    shape: &[usize],
    rng: &mut R,
) -> Tensor<T> {
    let area: usize = shape.iter().skip(2).product();
    let (fan_out, fan_in) = (shape[0] * area, shape.get(1).copied().unwrap_or(1) * area);
    let bound = T::from_f64_lossy((6.0 / (fan_in + fan_out).max(1) as f64).sqrt());
    Tensor::rand_uniform(shape, -bound, bound, rng)
}

/// A fully connected layer `y = x·Wᵀ + b`, with `W` stored `[out, in]` as PyTorch stores it.
/// It knows where its two tensors are in the [`ParamSet`] it was built into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    weight: usize,
    bias: usize,
}

impl Linear {
    /// Adds `{name}.weight` `[outputs, inputs]` and `{name}.bias` `[outputs]` to `params`,
    /// each made by `make(name, shape, fan_in)` (an initializer, or a loader).
    pub fn build<T: Element, E>(
        params: &mut ParamSet<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        make: &mut impl FnMut(&str, &[usize], usize) -> Result<Tensor<T>, E>,
    ) -> Result<Self, E> {
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        let wt = make(&w, &[outputs, inputs], inputs)?;
        let bt = make(&b, &[outputs], inputs)?;
        Ok(Linear { weight: params.push(w, wt), bias: params.push(b, bt) })
    }

    /// [`build`](Self::build) with PyTorch's `nn.Linear` initialization from `rng`.
    pub fn new<T: Element + SampleUniform, R: Rng + ?Sized>(
        params: &mut ParamSet<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut R,
    ) -> Self {
        let mut init =
            |_: &str, shape: &[usize], fan_in: usize| -> Result<Tensor<T>, std::convert::Infallible> {
                Ok(pytorch_uniform(shape, fan_in, rng))
            };
        infallible(Self::build(params, name, inputs, outputs, &mut init))
    }

    /// [`build`](Self::build) with both tensors zero.
    pub fn zeros<T: Element>(params: &mut ParamSet<T>, name: &str, inputs: usize, outputs: usize) -> Self {
        let mut zeros = |_: &str, shape: &[usize], _: usize| -> Result<Tensor<T>, std::convert::Infallible> {
            Ok(Tensor::zeros(shape))
        };
        infallible(Self::build(params, name, inputs, outputs, &mut zeros))
    }

    /// Where the bias is in its [`ParamSet`].
    pub fn bias_index(&self) -> usize {
        self.bias
    }

    /// `x·Wᵀ + b` on a tape, with `vars` from [`ParamSet::bind`] (one fused op: the bias is
    /// the GEMM's initial output, `Wᵀ` a strided view).
    pub fn forward<'g, T: Element>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> Var<'g, T> {
        x.linear(vars[self.weight], Some(vars[self.bias]), None)
    }

    /// `act(x·Wᵀ + b)`, the activation fused into the layer's op where it can be.
    pub fn forward_act<'g, T: Element>(
        &self,
        vars: &[Var<'g, T>],
        x: Var<'g, T>,
        act: Activation,
    ) -> Var<'g, T> {
        x.linear(vars[self.weight], Some(vars[self.bias]), Some(act))
    }
}

/// A 2-D convolution with a bias, `nn.Conv2d` (weight `[out, in, k, k]`) or
/// `nn.ConvTranspose2d` (weight `[in, out, k, k]`), as PyTorch stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    weight: usize,
    bias: usize,
    spec: Conv2dSpec,
    transpose: bool,
}

impl Conv {
    /// Adds `{name}.weight` and `{name}.bias` `[outputs]` to `params`, each made by
    /// `make(name, shape, fan_in)` with PyTorch's fan-in (`in·k·k` for a convolution,
    /// `out·k·k` for a transposed one: `weight.size(1)` times the kernel's area).
    #[allow(clippy::too_many_arguments)]
    pub fn build<T: Element, E>(
        params: &mut ParamSet<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        spec: Conv2dSpec,
        transpose: bool,
        make: &mut impl FnMut(&str, &[usize], usize) -> Result<Tensor<T>, E>,
    ) -> Result<Self, E> {
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        let shape =
            if transpose { [inputs, outputs, kernel, kernel] } else { [outputs, inputs, kernel, kernel] };
        let fan_in = shape[1] * kernel * kernel;
        let wt = make(&w, &shape, fan_in)?;
        let bt = make(&b, &[outputs], fan_in)?;
        Ok(Conv { weight: params.push(w, wt), bias: params.push(b, bt), spec, transpose })
    }

    /// Where the bias is in its [`ParamSet`].
    pub fn bias_index(&self) -> usize {
        self.bias
    }

    /// The convolution of `x` `[n, in, h, w]` plus the bias, on a tape.
    pub fn forward<'g, T: Element>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> Var<'g, T> {
        let (w, b) = (vars[self.weight], Some(vars[self.bias]));
        if self.transpose {
            x.conv_transpose2d(w, b, self.spec, [0, 0])
        } else {
            x.conv2d(w, b, self.spec)
        }
    }

    /// `act(forward(x))`.
    pub fn forward_act<'g, T: Element>(
        &self,
        vars: &[Var<'g, T>],
        x: Var<'g, T>,
        act: Activation,
    ) -> Var<'g, T> {
        self.forward(vars, x).activate(act)
    }
}
