//! 2-D convolutions over NCHW values and their transposes, with an optional bias: the
//! forward and the backward rules are the tensor crate's ([`Tensor::conv2d`],
//! [`Tensor::conv2d_backward`] and the transposed pair), which compute only the gradients
//! the tape asks for. When the weight takes a gradient, the tape keeps what the forward laid
//! out for it ([`ConvSaved`]) instead of building it again in the backward.

use tensor::{Conv2dSpec, ConvSaved, ConvWants, Element, Result, Tensor};

use crate::tape::{Backprop, Op, Var};

impl<'g, T: Element> Var<'g, T> {
    /// The 2-D convolution of `self` `[N, C, H, W]` with `w` `[O, C, kh, kw]` and an optional
    /// bias `[O]` (PyTorch's `conv2d`); see [`Tensor::conv2d`]. Panics, naming the shapes,
    /// when they do not fit.
    #[track_caller]
    pub fn conv2d(self, w: Var<'g, T>, b: Option<Var<'g, T>>, spec: Conv2dSpec) -> Var<'g, T> {
        tensor::ok(self.try_conv2d(w, b, spec))
    }

    /// Fallible [`conv2d`](Self::conv2d).
    #[track_caller]
    pub fn try_conv2d(self, w: Var<'g, T>, b: Option<Var<'g, T>>, spec: Conv2dSpec) -> Result<Var<'g, T>> {
        let (value, saved) = self.conv_inputs("conv2d", w, b, |x, w, b| x.try_conv2d_saved(w, b, spec))?;
        Ok(self.record_conv((value, saved), w, b, |x, w, b, saved| Op::Conv2d { x, w, b, spec, saved }))
    }

    /// The transposed 2-D convolution of `self` `[N, C, H, W]` with `w` `[C, O, kh, kw]` and
    /// an optional bias `[O]` (PyTorch's `conv_transpose2d`); see
    /// [`Tensor::conv_transpose2d`]. Panics, naming the shapes, when they do not fit.
    #[track_caller]
    pub fn conv_transpose2d(
        self,
        w: Var<'g, T>,
        b: Option<Var<'g, T>>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
    ) -> Var<'g, T> {
        tensor::ok(self.try_conv_transpose2d(w, b, spec, output_padding))
    }

    /// Fallible [`conv_transpose2d`](Self::conv_transpose2d).
    #[track_caller]
    pub fn try_conv_transpose2d(
        self,
        w: Var<'g, T>,
        b: Option<Var<'g, T>>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
    ) -> Result<Var<'g, T>> {
        let (value, saved) = self.conv_inputs("conv_transpose2d", w, b, |x, w, b| {
            x.try_conv_transpose2d_saved(w, b, spec, output_padding)
        })?;
        Ok(self.record_conv((value, saved), w, b, |x, w, b, saved| Op::ConvTranspose2d {
            x,
            w,
            b,
            spec,
            output_padding,
            saved,
        }))
    }

    /// Runs `forward` on the values of `self`, `w` and `b`, after checking they share a tape.
    #[track_caller]
    fn conv_inputs(
        self,
        name: &'static str,
        w: Var<'g, T>,
        b: Option<Var<'g, T>>,
        forward: impl FnOnce(&Tensor<T>, &Tensor<T>, Option<&Tensor<T>>) -> Result<(Tensor<T>, ConvSaved<T>)>,
    ) -> Result<(Tensor<T>, ConvSaved<T>)> {
        self.same_graph(name, &w);
        if let Some(b) = &b {
            self.same_graph(name, b);
        }
        forward(&self.value(), &w.value(), b.map(|b| b.value()).as_ref())
    }

    /// Records the op, keeping the forward's `saved` state only when the weight will take a
    /// gradient.
    fn record_conv(
        self,
        (value, saved): (Tensor<T>, ConvSaved<T>),
        w: Var<'g, T>,
        b: Option<Var<'g, T>>,
        op: impl FnOnce(usize, usize, Option<usize>, Option<ConvSaved<T>>) -> Op<T>,
    ) -> Var<'g, T> {
        // Without a bias, `x` stands in its place (the record only asks whether any input
        // takes a gradient).
        let inputs = [self.id, w.id, b.map_or(self.id, |b| b.id)];
        let saved = (self.graph.grad_enabled && w.requires_grad()).then_some(saved);
        Var::record(self.graph, value, op(self.id, w.id, b.map(|b| b.id), saved), &inputs)
    }
}

/// The rules of both ops: `transpose` is `None` for `conv2d` and the output padding for
/// `conv_transpose2d`.
pub(crate) fn backward<T: Element>(
    bp: &mut Backprop<'_, T>,
    x: usize,
    w: usize,
    b: Option<usize>,
    spec: Conv2dSpec,
    transpose: Option<[usize; 2]>,
    saved: Option<&ConvSaved<T>>,
    g: Tensor<T>,
) {
    let wants = ConvWants { input: bp.needs(x), weight: bp.needs(w), bias: b.is_some_and(|b| bp.needs(b)) };
    let (xv, wv) = (bp.value(x), bp.value(w));
    let grads = match transpose {
        None => xv.conv2d_backward(wv, &g, spec, wants, saved),
        Some(op) => xv.conv_transpose2d_backward(wv, &g, spec, op, wants, saved),
    };
    let grads = tensor::ok(grads); // the forward checked these shapes
    for (id, grad) in [(Some(x), grads.input), (Some(w), grads.weight), (b, grads.bias)] {
        if let (Some(id), Some(grad)) = (id, grad) {
            bp.accumulate(id, grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use tensor::Conv2dSpec;

    use crate::ops::testing::check_with;

    /// Every gradient in f64 against finite differences, on each presentation of the inputs
    /// (contiguous, transposed, narrowed, broadcast): stride, padding, dilation, 1×1 and
    /// 5×5 kernels, batch 1, and an input used twice. The loss squashes the outputs with a
    /// tanh so that it stays small and the finite differences' rounding below the tolerance.
    #[test]
    fn gradcheck_conv2d() {
        let cases: [(&str, [usize; 4], [usize; 4], Conv2dSpec); 5] = [
            ("3x3 s1 p1", [2, 3, 5, 5], [4, 3, 3, 3], Conv2dSpec::new(1, 1)),
            ("4x4 s2 p1", [2, 2, 6, 6], [3, 2, 4, 4], Conv2dSpec::new(2, 1)),
            ("1x1", [1, 3, 4, 3], [2, 3, 1, 1], Conv2dSpec::default()),
            ("5x5 p2", [1, 1, 5, 6], [2, 1, 5, 5], Conv2dSpec::new(1, 2)),
            (
                "3x2 s(2,1) d2",
                [2, 2, 7, 6],
                [2, 2, 3, 2],
                Conv2dSpec { stride: [2, 1], padding: [1, 0], dilation: [2, 2] },
            ),
        ];
        for (name, sx, sw, spec) in cases {
            check_with(
                name,
                move |_, v| v[0].conv2d(v[1], Some(v[2]), spec).mul_scalar(0.3).tanh().sum(),
                &[&sx, &sw, &[sw[0]]],
                0.0,
            );
            check_with(name, move |_, v| v[0].conv2d(v[1], None, spec).tanh().sum(), &[&sx, &sw], 0.0);
        }
        // The input as its own kernel: both gradients land on one leaf.
        check_with(
            "x twice",
            |_, v| v[0].conv2d(v[0], None, Conv2dSpec::new(1, 1)).mul_scalar(0.3).tanh().sum(),
            &[&[2, 2, 3, 3]],
            0.0,
        );
    }

    #[test]
    fn gradcheck_conv_transpose2d() {
        // (name, input shape, weight shape, spec, output padding)
        type Case = (&'static str, [usize; 4], [usize; 4], Conv2dSpec, [usize; 2]);
        let cases: [Case; 4] = [
            ("4x4 s2 p1", [2, 3, 3, 3], [3, 2, 4, 4], Conv2dSpec::new(2, 1), [0, 0]),
            ("3x3 s2 p1 op1", [1, 2, 3, 4], [2, 3, 3, 3], Conv2dSpec::new(2, 1), [1, 1]),
            ("1x1", [2, 3, 3, 2], [3, 2, 1, 1], Conv2dSpec::default(), [0, 0]),
            ("5x5 d2 s3", [1, 2, 2, 3], [2, 1, 5, 5], Conv2dSpec::new(3, 2).with_dilation(2), [2, 1]),
        ];
        for (name, sx, sw, spec, op) in cases {
            check_with(
                name,
                move |_, v| v[0].conv_transpose2d(v[1], Some(v[2]), spec, op).mul_scalar(0.3).tanh().sum(),
                &[&sx, &sw, &[sw[1]]],
                0.0,
            );
        }
    }
}
