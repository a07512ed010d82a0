//! The fused fully connected layer `act(x·Wᵀ + b)`: one GEMM that accumulates into the bias
//! ([`Tensor::matmul_bias`]), and the activation (a row of the unary table) applied in
//! place, so the layer makes one tensor where matmul, add and the activation would make
//! three.

use tensor::{Element, Result, Tensor, TensorError};

use super::unary::rows;
use crate::tape::{Backprop, Op, UnaryRow, Uses, Var};

/// A layer's nonlinearity: the one list the layers, the models' configurations and the
/// command line share. [`Var::linear`] fuses those whose derivative is written in terms of
/// their output (ReLU, tanh, sigmoid: the layer need not keep its pre-activation) and
/// applies softplus after the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Activation {
    /// `max(x, 0)`, [`Var::relu`] (pytorch/examples' VAE).
    Relu,
    /// `tanh x`, [`Var::tanh`] (Burda et al.'s IWAE models).
    Tanh,
    /// `1 / (1 + e⁻ˣ)`, [`Var::sigmoid`].
    Sigmoid,
    /// `ln(1 + eˣ)`, [`Var::softplus`].
    Softplus,
}

impl Activation {
    /// Every activation, in the order of [`as_str`](Self::as_str)'s list.
    pub const ALL: [Activation; 4] =
        [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Softplus];

    /// The name used on the command line and in checkpoints.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
        }
    }

    /// Its row of the unary table, when the layer can fuse it (its derivative reads the
    /// output).
    fn fused_row<T: Element>(self) -> Option<UnaryRow<T>> {
        let row = match self {
            Activation::Relu => rows::relu(),
            Activation::Tanh => rows::tanh(),
            Activation::Sigmoid => rows::sigmoid(),
            Activation::Softplus => return None,
        };
        debug_assert_eq!(row.uses, Uses::Output);
        Some(row)
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Activation::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Activation::ALL.iter().map(|a| a.as_str()).collect();
            format!("unknown activation '{s}' (expected {})", names.join(", "))
        })
    }
}

impl<'g, T: Element> Var<'g, T> {
    /// `act(self)` as an op of its own (what a layer cannot fuse, or a convolution's output).
    pub fn activate(self, act: Activation) -> Var<'g, T> {
        match act {
            Activation::Relu => self.relu(),
            Activation::Tanh => self.tanh(),
            Activation::Sigmoid => self.sigmoid(),
            Activation::Softplus => self.softplus(),
        }
    }
}

impl<'g, T: Element> Var<'g, T> {
    /// `act(x·Wᵀ + b)` for `x = self` `[n, in]`, `w` `[out, in]` (PyTorch's layout), an
    /// optional bias `[out]` and an optional activation. Panics, naming the shapes, when
    /// they do not fit.
    #[track_caller]
    pub fn linear(self, w: Var<'g, T>, b: Option<Var<'g, T>>, act: Option<Activation>) -> Var<'g, T> {
        tensor::ok(self.try_linear(w, b, act))
    }

    /// Fallible [`linear`](Self::linear).
    #[track_caller]
    pub fn try_linear(
        self,
        w: Var<'g, T>,
        b: Option<Var<'g, T>>,
        act: Option<Activation>,
    ) -> Result<Var<'g, T>> {
        self.same_graph("linear", &w);
        let (x, wv) = (self.value(), w.value());
        let (sx, sw) = (x.shape(), wv.shape());
        if sx.len() != 2 || sw.len() != 2 || sx[1] != sw[1] {
            return Err(TensorError::ShapeMismatch { op: "linear", lhs: sx.to_vec(), rhs: sw.to_vec() });
        }
        let out = sw[0];
        let mut y = match b {
            Some(b) => {
                self.same_graph("linear", &b);
                let bv = b.value();
                if bv.shape() != [out] {
                    return Err(TensorError::ShapeMismatch {
                        op: "linear (bias)",
                        lhs: sw.to_vec(),
                        rhs: bv.shape().to_vec(),
                    });
                }
                x.try_matmul_bias(&wv.t(), &bv)?
            }
            None => x.try_matmul(&wv.t())?,
        };
        let row = act.and_then(Activation::fused_row);
        if let Some(row) = row {
            (row.forward_inplace)(&mut y, T::zero());
        }
        // Without a bias, `x` stands in its place (the record only asks whether any input
        // takes a gradient).
        let inputs = [self.id, w.id, b.map_or(self.id, |b| b.id)];
        let fused = row.is_some();
        let y = Var::record(
            self.graph,
            y,
            Op::Linear { x: self.id, w: w.id, b: b.map(|b| b.id), act: row },
            &inputs,
        );
        Ok(match act {
            Some(act) if !fused => y.activate(act),
            _ => y,
        })
    }
}

/// With `g` the output gradient times the activation's derivative (from the output):
/// `∂x = g·W`, `∂W = gᵀ·x` (through transposed views, accumulated with `beta = 1`), and
/// `∂b = Σ_rows g`.
pub(crate) fn backward<T: Element>(
    bp: &mut Backprop<'_, T>,
    out: usize,
    x: usize,
    w: usize,
    b: Option<usize>,
    act: Option<UnaryRow<T>>,
    g: Tensor<T>,
) {
    let g = match act {
        Some(row) => (row.chain)(&g, bp.value(out), T::zero()),
        None => g,
    };
    if let Some(b) = b.filter(|&b| bp.needs(b)) {
        bp.accumulate(b, g.sum_axis(0, false));
    }
    let dw = bp.needs(w).then(|| (w, g.t(), bp.value(x).clone()));
    let dx = bp.needs(x).then(|| (x, g, bp.value(w).clone()));
    bp.accumulate_matmuls([dw, dx]);
}

#[cfg(test)]
mod tests {
    use super::Activation;
    use crate::ops::testing::{check, check_with};
    use crate::tape::Graph;

    const ALL: [Activation; 4] = Activation::ALL;

    #[test]
    fn gradcheck_linear() {
        check(|_, v| v[0].linear(v[1], Some(v[2]), None), &[&[3, 4], &[5, 4], &[5]], 0.0);
        for act in ALL {
            let name = format!("{act:?}");
            check_with(
                &name,
                |_, v| v[0].linear(v[1], Some(v[2]), Some(act)),
                &[&[3, 4], &[5, 4], &[5]],
                0.0,
            );
            check_with(
                &name,
                |_, v| v[0].linear(v[1], None, Some(act)) * v[0].linear(v[1], None, None),
                &[&[3, 4], &[2, 4]],
                0.0,
            );
        }
        check(|_, v| v[0].linear(v[0], None, None), &[&[4, 4]], 0.0); // input used twice
    }

    #[test]
    fn matches_the_unfused_ops() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let g = Graph::<f64>::new();
        let x = g.param(tensor::Tensor::randn(&[6, 5], &mut rng));
        let w = g.param(tensor::Tensor::randn(&[4, 5], &mut rng));
        let b = g.param(tensor::Tensor::randn(&[4], &mut rng));
        let pre = x.matmul(w.t()) + b;
        for (act, plain) in ALL.into_iter().zip([pre.relu(), pre.tanh(), pre.sigmoid(), pre.softplus()]) {
            let fused = x.linear(w, Some(b), Some(act)).value().to_vec();
            for (f, p) in fused.iter().zip(&plain.value().to_vec()) {
                assert!((f - p).abs() < 1e-12, "{act:?}");
            }
        }
    }
}
