//! Named parameters and the linear layer.

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::uniform::SampleUniform;
use tensor::{Element, Tensor};

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
    pub fn bind<'g>(&self, graph: &'g Graph<T>) -> Vec<Var<'g, T>> {
        self.tensors.iter().map(|t| graph.param(t.clone())).collect()
    }
}

/// A fully connected layer `y = x·Wᵀ + b`, with `W` stored `[out, in]` as PyTorch stores it.
/// It holds the indices of its two tensors in a [`ParamSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Index of the weight `[out, in]`.
    pub weight: usize,
    /// Index of the bias `[out]`.
    pub bias: usize,
}

impl Linear {
    /// Adds `{name}.weight` and `{name}.bias` to `params`, initialized as PyTorch's
    /// `nn.Linear`: uniform on ±1/√in for both.
    pub fn new<T: Element + SampleUniform, R: Rng + ?Sized>(
        params: &mut ParamSet<T>,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut R,
    ) -> Self {
        let bound = T::from_f64_lossy(1.0 / (inputs.max(1) as f64).sqrt());
        let w = Tensor::rand_uniform(&[outputs, inputs], -bound, bound, rng);
        let b = Tensor::rand_uniform(&[outputs], -bound, bound, rng);
        Linear {
            weight: params.push(format!("{name}.weight"), w),
            bias: params.push(format!("{name}.bias"), b),
        }
    }

    /// `x·Wᵀ + b` on a tape, with `vars` from [`ParamSet::bind`] (one fused op: the bias is
    /// the GEMM's initial output, `Wᵀ` a strided view).
    pub fn forward<'g, T: Element>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> Var<'g, T> {
        x.linear(vars[self.weight], Some(vars[self.bias]), None)
    }

    /// `relu(x·Wᵀ + b)`, fused into one op.
    pub fn forward_relu<'g, T: Element>(&self, vars: &[Var<'g, T>], x: Var<'g, T>) -> Var<'g, T> {
        x.linear(vars[self.weight], Some(vars[self.bias]), Some(autograd::Activation::Relu))
    }
}
