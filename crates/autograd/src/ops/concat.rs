//! Joining values along one axis.

use tensor::{Element, Result, Tensor, TensorError};

use super::narrow::write_slab;

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// Joins `parts` along `axis`; every other axis must agree. Panics, naming the shapes,
    /// when they do not, or when `parts` is empty.
    #[track_caller]
    pub fn concat(parts: &[Var<'g, T>], axis: usize) -> Var<'g, T> {
        tensor::ok(Self::try_concat(parts, axis))
    }

    /// Fallible [`concat`](Self::concat).
    #[track_caller]
    pub fn try_concat(parts: &[Var<'g, T>], axis: usize) -> Result<Var<'g, T>> {
        let first =
            parts.first().ok_or_else(|| TensorError::Invalid { op: "concat", msg: "no inputs".into() })?;
        let values: Vec<Tensor<T>> = parts.iter().map(|p| p.value()).collect();
        let base = values[0].shape().to_vec();
        if axis >= base.len() {
            return Err(TensorError::AxisOutOfRange { op: "concat", axis, shape: base });
        }
        let mut shape = base.clone();
        shape[axis] = 0;
        for (p, v) in parts.iter().zip(&values) {
            first.same_graph("concat", p);
            let s = v.shape();
            let fits = s.len() == base.len() && (0..s.len()).all(|i| i == axis || s[i] == base[i]);
            if !fits {
                return Err(TensorError::ShapeMismatch { op: "concat", lhs: base, rhs: s.to_vec() });
            }
            shape[axis] += s[axis];
        }
        let mut out = vec![T::zero(); shape.iter().product()];
        let mut start = 0;
        for v in &values {
            write_slab(&mut out, &shape, axis, start, v);
            start += v.shape()[axis];
        }
        let ids: Vec<usize> = parts.iter().map(|p| p.id).collect();
        let value = Tensor::from_vec(out, &shape);
        Ok(Var::record(first.graph, value, Op::Concat { xs: ids.clone(), axis }, &ids))
    }
}

/// Each input gets its own slab of the output gradient (a view).
pub(crate) fn backward<T: Element>(bp: &mut Backprop<'_, T>, xs: &[usize], axis: usize, g: Tensor<T>) {
    let mut start = 0;
    for &x in xs {
        let len = bp.value(x).shape()[axis];
        if bp.needs(x) {
            bp.accumulate(x, g.narrow(axis, start, len));
        }
        start += len;
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::check;
    use crate::tape::Var;

    #[test]
    fn gradcheck_concat() {
        check(|_, x| Var::concat(&[x[0], x[1]], 1), &[&[3, 4], &[3, 2]], 0.0);
        check(|_, x| Var::concat(&[x[0], x[1], x[0]], 0), &[&[2, 4], &[3, 4]], 0.0);
    }
}
