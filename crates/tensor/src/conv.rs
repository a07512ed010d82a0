//! 2-D convolutions over NCHW tensors and their transposes, as matrix products through the
//! crate's GEMM.
//!
//! A convolution of `x` `[N, C, H, W]` with `w` `[O, C, kh, kw]` is one product over the
//! whole batch. `x` is first laid out batch-innermost, `[C, H, W, N]`; unfolding it (im2col)
//! gives the column matrix `[C·kh·kw, oh·ow·N]`, whose row `(c, i, j)` holds, for every output
//! pixel, the input pixel its kernel tap `(i, j)` reads (zero in the padding): with the batch
//! innermost, each tap of each output pixel is one contiguous run of `N` elements on both
//! sides, a plain copy. Then `Y = W·cols` with `W` seen as `[O, C·kh·kw]` (its own memory,
//! no copy) is `[O, oh, ow, N]`, which goes back to `[N, O, oh, ow]` with the bias added.
//! One product over the batch keeps the GEMM's `n` large (a 7×7 output image alone would be
//! 49 columns, a poor fit for the micro-kernel's tiles). Unfolding NCHW directly, into
//! columns ordered `(n, oh, ow)`, would copy runs of `ow` pixels (7 or 14 here) instead of
//! `N`.
//!
//! The transposed convolution is the adjoint of the convolution in its input, so the same
//! pieces run the other way: `cols = Wᵀ·X`, then fold the columns back onto the image
//! (col2im, summing the taps that land on one pixel). Every rule is built from these moves:
//!
//! | | forward | ∂input | ∂weight |
//! |---|---|---|---|
//! | `conv2d` | `W·unfold(x)` | `fold(Wᵀ·∂Y)` | `∂Y·unfold(x)ᵀ` |
//! | `conv_transpose2d` | `fold(Wᵀ·X)` | `W·unfold(∂Y)` | `X·unfold(∂Y)ᵀ` |
//!
//! A backward makes `∂Y` batch-innermost (or unfolds it) once for both gradients. An implicit
//! GEMM (the column matrix read through strides instead of built) is out of reach with
//! matrixmultiply, whose operands are 2-D strided: a row `(c, i, j)` of the column matrix is
//! not one stride away from the next. Only a 1×1 kernel at stride 1 without padding has its
//! column matrix equal to the input, and that case multiplies straight off it.
//!
//! Bits: the layout changes and unfolding only move elements; folding sums the taps of each
//! pixel in one fixed order inside one task (tasks are whole channels); products split over
//! the pool as every product does. So results are the same at any thread count.
//!
//! Scratch: the column matrix and the batch-innermost copies are buffers of the storage
//! pool (`pool.rs`), taken for the call and handed back on drop, so a step in steady state
//! reuses the last step's.

use std::sync::Arc;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{ok, Result, TensorError};
use crate::kernels::{parallel, PAR_MIN_LEN};
use crate::matmul::gemm_strided;
use crate::pool;
use crate::tensor::Tensor;

/// Stride, padding and dilation of a 2-D convolution, each `[height, width]`, as PyTorch's
/// `nn.Conv2d` takes them. The default is stride 1, no padding, dilation 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Step between kernel positions.
    pub stride: [usize; 2],
    /// Zeros added on both sides of each spatial axis.
    pub padding: [usize; 2],
    /// Step between kernel taps (1: adjacent pixels).
    pub dilation: [usize; 2],
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec { stride: [1, 1], padding: [0, 0], dilation: [1, 1] }
    }
}

impl Conv2dSpec {
    /// The same stride and padding on both axes, dilation 1.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dSpec { stride: [stride; 2], padding: [padding; 2], dilation: [1, 1] }
    }

    /// `self` with dilation `d` on both axes.
    pub fn with_dilation(self, d: usize) -> Self {
        Conv2dSpec { dilation: [d; 2], ..self }
    }

    /// The output length along spatial axis `a` (0: height, 1: width) of a convolution over
    /// `input` pixels with a `kernel`-tap kernel: `⌊(input + 2p − d(k−1) − 1)/s⌋ + 1`, or
    /// `None` when the dilated kernel is longer than the padded input.
    /// (Also `None` when a term overflows, or the stride is 0.)
    pub fn conv_out(&self, a: usize, input: usize, kernel: usize) -> Option<usize> {
        let span = self.dilation[a].checked_mul(kernel.checked_sub(1)?)?.checked_add(1)?;
        let padded = input.checked_add(self.padding[a].checked_mul(2)?)?;
        (padded >= span).then(|| (padded - span).checked_div(self.stride[a]).map(|q| q + 1)).flatten()
    }

    /// The output length along axis `a` of a transposed convolution over `input` pixels:
    /// `(input − 1)s − 2p + d(k−1) + output_padding + 1`, or `None` when that is below 1 (or
    /// a term overflows).
    pub fn transpose_out(
        &self,
        a: usize,
        input: usize,
        kernel: usize,
        output_padding: usize,
    ) -> Option<usize> {
        let full = (input.checked_sub(1)?)
            .checked_mul(self.stride[a])?
            .checked_add(self.dilation[a].checked_mul(kernel.checked_sub(1)?)?)?
            .checked_add(output_padding)?
            .checked_add(1)?;
        full.checked_sub(self.padding[a].checked_mul(2)?).filter(|&n| n >= 1)
    }

    fn check(&self, op: &'static str) -> Result<()> {
        if self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err(TensorError::Invalid {
                op,
                msg: format!("stride and dilation must be ≥ 1, got {self:?}"),
            });
        }
        Ok(())
    }
}

/// The gradients of a convolution that [`Tensor::conv2d_backward`] and
/// [`Tensor::conv_transpose2d_backward`] were asked for.
#[derive(Clone, Debug, Default)]
pub struct ConvGrads<T: Element> {
    /// ∂/∂input, the input's shape.
    pub input: Option<Tensor<T>>,
    /// ∂/∂weight, the weight's shape.
    pub weight: Option<Tensor<T>>,
    /// ∂/∂bias, `[channels out]`.
    pub bias: Option<Tensor<T>>,
}

/// Which gradients a convolution's backward should compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvWants {
    /// ∂/∂input.
    pub input: bool,
    /// ∂/∂weight.
    pub weight: bool,
    /// ∂/∂bias.
    pub bias: bool,
}

/// What a convolution's forward keeps for its backward: the weight's gradient reads the
/// forward's input side laid out batch-innermost (for [`Tensor::conv2d`] its column matrix,
/// for [`Tensor::conv_transpose2d`] the input itself), which the forward built anyway. Made
/// by [`Tensor::try_conv2d_saved`] and [`Tensor::try_conv_transpose2d_saved`], and handed to
/// the backward of the same call; its buffer goes back to the storage pool when
/// dropped.
pub struct ConvSaved<T: Element> {
    geom: Geom,
    buf: Buf<T>,
}

impl<T: Element> std::fmt::Debug for ConvSaved<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvSaved").field("geom", &self.geom).field("len", &self.buf.len()).finish()
    }
}

/// The buffer of `saved`, checked to be of geometry `g`, or `None` when none was given.
fn saved_buf<'a, T: Element>(
    op: &'static str,
    g: &Geom,
    saved: Option<&'a ConvSaved<T>>,
) -> Result<Option<&'a [T]>> {
    match saved {
        Some(s) if s.geom != *g => {
            Err(invalid(op, format!("saved state of another convolution ({:?}, not {g:?})", s.geom)))
        }
        s => Ok(s.map(|s| &*s.buf)),
    }
}

/// One convolution's shapes, always in the convolution's direction: the image side
/// `[n, c, h, w]` is what the kernel slides over and the output side `[n, o, oh, ow]` what
/// it produces (for a transposed convolution the image side is its output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    spec: Conv2dSpec,
}

impl Geom {
    /// Checks, with checked arithmetic, that every size and index the kernels compute from
    /// this geometry fits `isize`: the buffers (input, output, column matrix, kernel) and,
    /// along each spatial axis, the tap offsets and spans that [`span`](Self::span) forms.
    fn check(self, op: &'static str) -> Result<Self> {
        let s = self.spec;
        // Extents of 0 count as 1, so that every partial product the kernels form (of an
        // empty batch, say) fits too.
        let count = |dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
                .filter(|&n| n <= isize::MAX as usize)
        };
        let axes = [(self.h, self.oh, self.kh), (self.w, self.ow, self.kw)];
        let spatial = axes.iter().enumerate().all(|(a, &(input, out, k))| {
            // `span` forms input + p + s and (k − 1)·d + p (both bound the terms it casts to
            // isize), and a position reaches (out − 1)·s + (k − 1)·d.
            let taps = k.saturating_sub(1).checked_mul(s.dilation[a]);
            let terms = [
                input.checked_add(s.padding[a]).and_then(|v| v.checked_add(s.stride[a])),
                taps.and_then(|v| v.checked_add(s.padding[a])),
                out.saturating_sub(1).checked_mul(s.stride[a]).and_then(|v| v.checked_add(taps?)),
            ];
            terms.iter().all(|t| t.is_some_and(|v| v <= isize::MAX as usize))
        });
        let buffers = [
            count(&[self.n, self.c, self.h, self.w]),
            count(&[self.n, self.o, self.oh, self.ow]),
            count(&[self.c, self.kh, self.kw, self.n, self.oh, self.ow]),
            count(&[self.o, self.c, self.kh, self.kw]),
        ];
        if !spatial || buffers.contains(&None) {
            return Err(invalid(op, format!("geometry {self:?} overflows isize")));
        }
        Ok(self)
    }

    /// Output pixels per image.
    fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// Columns of the column matrix: output pixels of the whole batch.
    fn nl(&self) -> usize {
        self.n * self.l()
    }

    /// Rows of the column matrix: one per input channel and kernel tap.
    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Along axis `a`, for the tap at `tap`: the output positions `lo..hi` whose input
    /// `pos·s + tap·d − p` lies inside `0..input`, and that offset `tap·d − p`.
    fn span(&self, a: usize, tap: usize) -> (usize, usize, isize) {
        let (input, out) = if a == 0 { (self.h, self.oh) } else { (self.w, self.ow) };
        let s = self.spec.stride[a] as isize;
        let off = (tap * self.spec.dilation[a]) as isize - self.spec.padding[a] as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = ((input as isize - off + s - 1) / s).clamp(0, out as isize);
        let lo = lo.min(hi);
        (lo as usize, hi as usize, off)
    }
}

/// Runs `f(first_item, chunk)` over `out` seen as items of `item` elements each, in chunks of
/// whole items on the pool when the work is large, each chunk (but the last) a multiple of
/// `group` items. What an item computes does not depend on the chunking, so neither do the
/// bits.
fn for_items<T: Send, F: Fn(usize, &mut [T]) + Sync>(out: &mut [T], item: usize, group: usize, f: F) {
    // No items, nothing to do (and `f` is never asked to walk the other axes of an empty
    // buffer, which may be long).
    if item == 0 || out.is_empty() {
        return;
    }
    if parallel(out.len()) {
        let per_task = PAR_MIN_LEN.div_ceil(item).next_multiple_of(group);
        out.par_chunks_mut(per_task * item).enumerate().for_each(|(t, chunk)| f(t * per_task, chunk));
    } else {
        f(0, out);
    }
}

/// The side of [`transpose`]'s square tiles.
const TILE: usize = 8;

/// One tile of [`transpose`]: `src`'s rows `r0..r0 + w`, columns `col..col + h` into `dst`'s
/// rows `d0..d0 + h` (of `rows` elements), columns `r0..r0 + w`, plus `add[a]` on source row
/// `r0 + a` when given. Always inlined, so the full tiles (`h = w = TILE`) get constant bounds.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn move_tile<T: Element>(
    src: &[T],
    cols: usize,
    (r0, col): (usize, usize),
    (w, h): (usize, usize),
    add: Option<&[T; TILE]>,
    dst: &mut [T],
    rows: usize,
    d0: usize,
) {
    let mut tile = [[T::zero(); TILE]; TILE];
    for (a, t) in tile.iter_mut().enumerate().take(w) {
        t[..h].copy_from_slice(&src[(r0 + a) * cols + col..][..h]);
    }
    for b in 0..h {
        let out = &mut dst[(d0 + b) * rows + r0..][..w];
        match add {
            Some(add) => out.iter_mut().enumerate().for_each(|(a, o)| *o = tile[a][b] + add[a]),
            None => out.iter_mut().enumerate().for_each(|(a, o)| *o = tile[a][b]),
        }
    }
}

/// `src` `[rows, cols]` into `dst` `[cols, rows]`, plus `bias[j / group]` on column `j` of
/// `dst` when given as `(bias, group)`. In 8×8 tiles (eight short rows in, eight out, so
/// both sides move whole runs), tasks owning whole tiles' worth of rows of `dst` (a task
/// with a ragged edge would move it element by element down whole columns).
fn transpose<T: Element>(src: &[T], rows: usize, cols: usize, bias: Option<(&[T], usize)>, dst: &mut [T]) {
    for_items(dst, rows, TILE, |first, chunk| {
        let out_rows = chunk.len() / rows.max(1);
        for r0 in (0..rows).step_by(TILE) {
            let w = TILE.min(rows - r0);
            let add = bias.map(|(b, group)| std::array::from_fn(|a| b[(r0 + a).min(rows - 1) / group]));
            for d0 in (0..out_rows).step_by(TILE) {
                let h = TILE.min(out_rows - d0);
                let at = (r0, first + d0);
                if w == TILE && h == TILE {
                    move_tile(src, cols, at, (TILE, TILE), add.as_ref(), chunk, rows, d0);
                } else {
                    move_tile(src, cols, at, (w, h), add.as_ref(), chunk, rows, d0);
                }
            }
        }
    });
}

/// im2col with the batch innermost: `xt` `[c, h, w, n]` into `cols`
/// `[c·kh·kw, oh·ow·n]`. Each tap of each output pixel is a run of `n` contiguous elements
/// on both sides (a copy, or zeros in the padding).
fn unfold<T: Element>(g: &Geom, xt: &[T], cols: &mut [T]) {
    let (nb, nl) = (g.n, g.nl());
    let (s0, s1) = (g.spec.stride[0], g.spec.stride[1]);
    for_items(cols, nl, 1, |first, chunk| {
        for (r, row) in chunk.chunks_mut(nl).enumerate() {
            let r = first + r;
            let (c, i, j) = (r / (g.kh * g.kw), r / g.kw % g.kh, r % g.kw);
            let (ilo, ihi, ioff) = g.span(0, i);
            let (jlo, jhi, joff) = g.span(1, j);
            for (oi, out) in row.chunks_mut(g.ow * nb).enumerate() {
                if oi < ilo || oi >= ihi {
                    out.fill(T::zero());
                    continue;
                }
                let ih = ((oi * s0) as isize + ioff) as usize;
                let src = &xt[(c * g.h + ih) * g.w * nb..][..g.w * nb];
                for (oj, dst) in out.chunks_exact_mut(nb).enumerate() {
                    if oj < jlo || oj >= jhi {
                        dst.fill(T::zero());
                    } else {
                        let iw = ((oj * s1) as isize + joff) as usize;
                        dst.copy_from_slice(&src[iw * nb..][..nb]);
                    }
                }
            }
        }
    });
}

/// col2im, the adjoint of [`unfold`]: `xt` `[c, h, w, n]` set to the sum of the columns'
/// taps that land on each pixel, plus `bias[c]` when given. A task owns whole channels, and
/// each pixel sums its taps in one order (bias, then taps `(i, j)` row by row).
fn fold<T: Element>(g: &Geom, cols: &[T], bias: Option<&[T]>, xt: &mut [T]) {
    let (nb, nl) = (g.n, g.nl());
    let (s0, s1) = (g.spec.stride[0], g.spec.stride[1]);
    for_items(xt, g.h * g.w * nb, 1, |first, chunk| {
        for (c, plane) in chunk.chunks_mut(g.h * g.w * nb).enumerate() {
            let c = first + c;
            plane.fill(bias.map_or(T::zero(), |b| b[c]));
            for i in 0..g.kh {
                let (ilo, ihi, ioff) = g.span(0, i);
                for j in 0..g.kw {
                    let (jlo, jhi, joff) = g.span(1, j);
                    let row = &cols[((c * g.kh + i) * g.kw + j) * nl..][..nl];
                    for oi in ilo..ihi {
                        let ih = ((oi * s0) as isize + ioff) as usize;
                        for oj in jlo..jhi {
                            let iw = ((oj * s1) as isize + joff) as usize;
                            let dst = &mut plane[(ih * g.w + iw) * nb..][..nb];
                            let src = &row[(oi * g.ow + oj) * nb..][..nb];
                            dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                        }
                    }
                }
            }
        }
    });
}

/// A scratch buffer of `len` elements from the storage pool (`pool.rs`), handed
/// back when dropped. Its contents are stale: every user overwrites all of it.
struct Buf<T: Element>(Arc<Vec<T>>);

impl<T: Element> Buf<T> {
    fn new(len: usize) -> Self {
        Buf(pool::take_or_fail(len))
    }
}

impl<T: Element> std::ops::Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Element> std::ops::DerefMut for Buf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        Arc::get_mut(&mut self.0).expect("a taken buffer has one owner")
    }
}

impl<T: Element> Drop for Buf<T> {
    fn drop(&mut self) {
        pool::give(&mut self.0);
    }
}

fn slice<T: Element>(t: &Tensor<T>) -> &[T] {
    t.as_slice().expect("made contiguous")
}

fn invalid(op: &'static str, msg: String) -> TensorError {
    TensorError::Invalid { op, msg }
}

/// Checks the shapes of a convolution (`transpose`: of a transposed one) and returns its
/// geometry in the convolution's direction.
fn geometry<T: Element>(
    op: &'static str,
    x: &Tensor<T>,
    w: &Tensor<T>,
    spec: Conv2dSpec,
    output_padding: Option<[usize; 2]>,
) -> Result<Geom> {
    spec.check(op)?;
    let (sx, sw) = (x.shape(), w.shape());
    // The weight's input-channel axis: 1 for a convolution, 0 for a transposed one.
    let input_axis = if output_padding.is_none() { 1 } else { 0 };
    if sx.len() != 4 || sw.len() != 4 || sx[1] != sw[input_axis] {
        return Err(TensorError::ShapeMismatch { op, lhs: sx.to_vec(), rhs: sw.to_vec() });
    }
    let (kh, kw) = (sw[2], sw[3]);
    match output_padding {
        None => {
            let too_big = || {
                let msg = format!(
                    "kernel {kh}x{kw} ({spec:?}) larger than the padded input {sx:?}, or sizes overflow"
                );
                invalid(op, msg)
            };
            let oh = spec.conv_out(0, sx[2], kh).ok_or_else(too_big)?;
            let ow = spec.conv_out(1, sx[3], kw).ok_or_else(too_big)?;
            Geom { n: sx[0], c: sx[1], h: sx[2], w: sx[3], o: sw[0], kh, kw, oh, ow, spec }.check(op)
        }
        Some(op_pad) => {
            if op_pad[0] >= spec.stride[0] || op_pad[1] >= spec.stride[1] {
                return Err(invalid(
                    op,
                    format!("output padding {op_pad:?} must be below the stride {:?}", spec.stride),
                ));
            }
            let empty = || {
                invalid(
                    op,
                    format!("empty output for input {sx:?}, kernel {kh}x{kw}, {spec:?}, or sizes overflow"),
                )
            };
            let h = spec.transpose_out(0, sx[2], kh, op_pad[0]).ok_or_else(empty)?;
            let w_ = spec.transpose_out(1, sx[3], kw, op_pad[1]).ok_or_else(empty)?;
            Geom { n: sx[0], c: sw[1], h, w: w_, o: sx[1], kh, kw, oh: sx[2], ow: sx[3], spec }.check(op)
        }
    }
}

fn check_bias<T: Element>(
    op: &'static str,
    bias: Option<&Tensor<T>>,
    channels: usize,
) -> Result<Option<Tensor<T>>> {
    match bias {
        Some(b) if b.shape() != [channels] => {
            Err(invalid(op, format!("bias of shape {:?} for {channels} output channels", b.shape())))
        }
        b => Ok(b.map(Tensor::contiguous)),
    }
}

fn check_grad<T: Element>(op: &'static str, grad: &Tensor<T>, shape: [usize; 4]) -> Result<Tensor<T>> {
    if grad.shape() != shape {
        return Err(TensorError::ShapeMismatch { op, lhs: grad.shape().to_vec(), rhs: shape.to_vec() });
    }
    Ok(grad.contiguous())
}

/// `x` `[n, f]` (an NCHW tensor with `f = c·h·w`) with the batch innermost, `[f, n]`.
fn batch_last<T: Element>(x: &[T], n: usize) -> Buf<T> {
    let f = x.len() / n.max(1);
    let mut t = Buf::new(x.len());
    transpose(x, n, f, None, &mut t);
    t
}

/// The column matrix of `xt` `[c, h, w, n]`. For a 1×1 kernel with stride 1 and no padding
/// that is `xt` itself, and the convolution is a product straight off the input.
fn columns<T: Element>(g: &Geom, xt: Buf<T>) -> Buf<T> {
    let spec = g.spec;
    if g.kh == 1 && g.kw == 1 && spec.stride == [1, 1] && spec.padding == [0, 0] {
        return xt;
    }
    let mut cols = Buf::new(g.rows() * g.nl());
    unfold(g, &xt, &mut cols);
    cols
}

/// `a·b` for `a` `m×k` and `b` `k×n`, each a slice with its (row, column) strides.
fn product<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: (&[T], usize, usize),
    b: (&[T], usize, usize),
) -> Buf<T> {
    let mut c = Buf::new(m * n);
    gemm_strided(m, k, n, a, b, T::zero(), &mut c);
    c
}

/// `W·cols` (`W` `[o, c·kh·kw]`), `[o, oh, ow, n]`, back to `[n, o, oh, ow]` plus the bias:
/// the convolution.
fn apply_kernel<T: Element>(g: &Geom, w: &[T], cols: &[T], bias: Option<&[T]>) -> Tensor<T> {
    let yt = product(g.o, g.rows(), g.nl(), (w, g.rows(), 1), (cols, g.nl(), 1));
    Tensor::fill_new(&[g.n, g.o, g.oh, g.ow], |y| {
        transpose(&yt, g.o * g.l(), g.n, bias.map(|b| (b, g.l())), y)
    })
}

/// `fold(Wᵀ·yt)` for `yt` `[o, oh, ow, n]`, back to `[n, c, h, w]`, plus the bias: the
/// adjoint.
fn apply_adjoint<T: Element>(g: &Geom, w: &[T], yt: &[T], bias: Option<&[T]>) -> Tensor<T> {
    let cols = product(g.rows(), g.o, g.nl(), (w, 1, g.rows()), (yt, g.nl(), 1));
    let mut xt = Buf::new(g.c * g.h * g.w * g.n);
    fold(g, &cols, bias, &mut xt);
    Tensor::fill_new(&[g.n, g.c, g.h, g.w], |x| transpose(&xt, g.c * g.h * g.w, g.n, None, x))
}

/// `yt·colsᵀ` for `yt` `[o, oh, ow, n]`, `[o, c·kh·kw]`: the kernel's gradient, of `shape`
/// (the weight's).
fn kernel_grad<T: Element>(g: &Geom, yt: &[T], cols: &[T], shape: &[usize]) -> Tensor<T> {
    // beta = 0: the GEMM writes every element without reading the stale buffer.
    Tensor::fill_new(shape, |dw| {
        gemm_strided(g.o, g.nl(), g.rows(), (yt, g.nl(), 1), (cols, 1, g.nl()), T::zero(), dw)
    })
}

/// The sum over batch and pixels of `t` `[n, c, h, w]`, per channel.
fn channel_sums<T: Element>(t: &Tensor<T>) -> Tensor<T> {
    let s = t.shape();
    t.reshape(&[s[0], s[1], s[2] * s[3]]).sum_axis(2, false).sum_axis(0, false)
}

impl<T: Element> Tensor<T> {
    /// The 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of `self` `[N, C, H,
    /// W]` with `weight` `[O, C, kh, kw]`, plus an optional `bias` `[O]`: `[N, O, oh, ow]`
    /// with `oh = ⌊(H + 2p − d(kh−1) − 1)/s⌋ + 1` (and so `ow`). Panics, naming the shapes,
    /// when they do not fit.
    ///
    /// ```
    /// use tensor::{Conv2dSpec, Tensor};
    /// let x = Tensor::<f32>::arange(16).reshape(&[1, 1, 4, 4]);
    /// let w = Tensor::ones(&[1, 1, 2, 2]); // sums of 2×2 windows
    /// let y = x.conv2d(&w, None, Conv2dSpec::new(2, 0));
    /// assert_eq!(y.shape(), &[1, 1, 2, 2]);
    /// assert_eq!(y.to_vec(), vec![10.0, 18.0, 42.0, 50.0]);
    /// ```
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor<T>, bias: Option<&Tensor<T>>, spec: Conv2dSpec) -> Tensor<T> {
        ok(self.try_conv2d(weight, bias, spec))
    }

    /// Fallible [`conv2d`](Self::conv2d).
    pub fn try_conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
    ) -> Result<Tensor<T>> {
        Ok(self.try_conv2d_saved(weight, bias, spec)?.0)
    }

    /// [`try_conv2d`](Self::try_conv2d), also returning what
    /// [`conv2d_backward`](Self::conv2d_backward) can reuse (the column matrix).
    pub fn try_conv2d_saved(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
    ) -> Result<(Tensor<T>, ConvSaved<T>)> {
        let g = geometry("conv2d", self, weight, spec, None)?;
        let bias = check_bias("conv2d", bias, g.o)?;
        let (x, w) = (self.contiguous(), weight.contiguous());
        let cols = columns(&g, batch_last(slice(&x), g.n));
        let y = apply_kernel(&g, slice(&w), &cols, bias.as_ref().map(slice));
        Ok((y, ConvSaved { geom: g, buf: cols }))
    }

    /// The transposed 2-D convolution (PyTorch's `conv_transpose2d`, the adjoint of
    /// [`conv2d`](Self::conv2d) in its input) of `self` `[N, C, H, W]` with `weight`
    /// `[C, O, kh, kw]`, plus an optional `bias` `[O]`: `[N, O, oh, ow]` with
    /// `oh = (H − 1)s − 2p + d(kh − 1) + output_padding + 1`. `output_padding` (below the
    /// stride) picks among the input sizes a strided convolution maps to the same size.
    ///
    /// ```
    /// use tensor::{Conv2dSpec, Tensor};
    /// let x = Tensor::<f32>::ones(&[1, 1, 2, 2]);
    /// let w = Tensor::ones(&[1, 1, 2, 2]);
    /// // Stride 2: each input pixel paints its own 2×2 block.
    /// let y = x.conv_transpose2d(&w, None, Conv2dSpec::new(2, 0), [0, 0]);
    /// assert_eq!(y.shape(), &[1, 1, 4, 4]);
    /// assert!(y.to_vec().iter().all(|&v| v == 1.0));
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
    ) -> Tensor<T> {
        ok(self.try_conv_transpose2d(weight, bias, spec, output_padding))
    }

    /// Fallible [`conv_transpose2d`](Self::conv_transpose2d).
    pub fn try_conv_transpose2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
    ) -> Result<Tensor<T>> {
        Ok(self.try_conv_transpose2d_saved(weight, bias, spec, output_padding)?.0)
    }

    /// [`try_conv_transpose2d`](Self::try_conv_transpose2d), also returning what
    /// [`conv_transpose2d_backward`](Self::conv_transpose2d_backward) can reuse (the input,
    /// batch-innermost).
    pub fn try_conv_transpose2d_saved(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
    ) -> Result<(Tensor<T>, ConvSaved<T>)> {
        let g = geometry("conv_transpose2d", self, weight, spec, Some(output_padding))?;
        let bias = check_bias("conv_transpose2d", bias, g.c)?;
        let (x, w) = (self.contiguous(), weight.contiguous());
        let xt = batch_last(slice(&x), g.n);
        let y = apply_adjoint(&g, slice(&w), &xt, bias.as_ref().map(slice));
        Ok((y, ConvSaved { geom: g, buf: xt }))
    }

    /// The gradients of `self.conv2d(weight, bias, spec)` given `grad_out`, the gradient of
    /// its output: those `wants` asks for. `saved`, from [`try_conv2d_saved`](Self::try_conv2d_saved)
    /// on the same `self`, spares rebuilding the column matrix (an error if it is another
    /// geometry's).
    pub fn conv2d_backward(
        &self,
        weight: &Tensor<T>,
        grad_out: &Tensor<T>,
        spec: Conv2dSpec,
        wants: ConvWants,
        saved: Option<&ConvSaved<T>>,
    ) -> Result<ConvGrads<T>> {
        const OP: &str = "conv2d_backward";
        let g = geometry(OP, self, weight, spec, None)?;
        let gy = check_grad(OP, grad_out, [g.n, g.o, g.oh, g.ow])?;
        let saved = saved_buf(OP, &g, saved)?;
        let mut grads = ConvGrads::default();
        if !(wants.input || wants.weight) {
            grads.bias = wants.bias.then(|| channel_sums(&gy));
            return Ok(grads);
        }
        let gt = batch_last(slice(&gy), g.n);
        if wants.input {
            grads.input = Some(apply_adjoint(&g, slice(&weight.contiguous()), &gt, None));
        }
        if wants.weight {
            let made;
            let cols = match saved {
                Some(cols) => cols,
                None => {
                    made = columns(&g, batch_last(slice(&self.contiguous()), g.n));
                    &made
                }
            };
            grads.weight = Some(kernel_grad(&g, &gt, cols, weight.shape()));
        }
        if wants.bias {
            grads.bias = Some(channel_sums(&gy));
        }
        Ok(grads)
    }

    /// The gradients of `self.conv_transpose2d(weight, bias, spec, output_padding)` given
    /// `grad_out`: those `wants` asks for. `saved`, from
    /// [`try_conv_transpose2d_saved`](Self::try_conv_transpose2d_saved) on the same `self`,
    /// spares laying the input out again (an error if it is another geometry's).
    pub fn conv_transpose2d_backward(
        &self,
        weight: &Tensor<T>,
        grad_out: &Tensor<T>,
        spec: Conv2dSpec,
        output_padding: [usize; 2],
        wants: ConvWants,
        saved: Option<&ConvSaved<T>>,
    ) -> Result<ConvGrads<T>> {
        const OP: &str = "conv_transpose2d_backward";
        let g = geometry(OP, self, weight, spec, Some(output_padding))?;
        let gy = check_grad(OP, grad_out, [g.n, g.c, g.h, g.w])?;
        let saved = saved_buf(OP, &g, saved)?;
        let mut grads = ConvGrads::default();
        if !(wants.input || wants.weight) {
            grads.bias = wants.bias.then(|| channel_sums(&gy));
            return Ok(grads);
        }
        // One column matrix of ∂Y serves both: ∂x = W·cols, ∂W = X·colsᵀ (the convolution's
        // kernel gradient with the image side ∂Y and the output side X).
        let cols = columns(&g, batch_last(slice(&gy), g.n));
        if wants.input {
            grads.input = Some(apply_kernel(&g, slice(&weight.contiguous()), &cols, None));
        }
        if wants.weight {
            let made;
            let xt = match saved {
                Some(xt) => xt,
                None => {
                    made = batch_last(slice(&self.contiguous()), g.n);
                    &made
                }
            };
            grads.weight = Some(kernel_grad(&g, xt, &cols, weight.shape()));
        }
        if wants.bias {
            grads.bias = Some(channel_sums(&gy));
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// The input pixel that tap `k` of output position `o` reads along an axis, if inside.
    fn tap(o: usize, k: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
        let i = (o * s + k * d) as isize - p as isize;
        (0..len as isize).contains(&i).then_some(i as usize)
    }

    /// conv2d by its definition: a direct loop over every output pixel and tap.
    fn direct_conv(x: &Tensor<f64>, w: &Tensor<f64>, b: Option<&Tensor<f64>>, sp: Conv2dSpec) -> Tensor<f64> {
        let (sx, sw) = (x.shape().to_vec(), w.shape().to_vec());
        let oh = sp.conv_out(0, sx[2], sw[2]).unwrap();
        let ow = sp.conv_out(1, sx[3], sw[3]).unwrap();
        let mut y = vec![0.0; sx[0] * sw[0] * oh * ow];
        for n in 0..sx[0] {
            for o in 0..sw[0] {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b.get(&[o]).unwrap());
                        for c in 0..sx[1] {
                            for ki in 0..sw[2] {
                                for kj in 0..sw[3] {
                                    let (Some(h), Some(v)) = (
                                        tap(i, ki, sp.stride[0], sp.padding[0], sp.dilation[0], sx[2]),
                                        tap(j, kj, sp.stride[1], sp.padding[1], sp.dilation[1], sx[3]),
                                    ) else {
                                        continue;
                                    };
                                    acc += x.get(&[n, c, h, v]).unwrap() * w.get(&[o, c, ki, kj]).unwrap();
                                }
                            }
                        }
                        y[((n * sw[0] + o) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        Tensor::from_vec(y, &[sx[0], sw[0], oh, ow])
    }

    /// conv_transpose2d by its definition: every input pixel paints its kernel, scaled, onto
    /// the output.
    fn direct_transpose(
        x: &Tensor<f64>,
        w: &Tensor<f64>,
        b: Option<&Tensor<f64>>,
        sp: Conv2dSpec,
        op: [usize; 2],
    ) -> Tensor<f64> {
        let (sx, sw) = (x.shape().to_vec(), w.shape().to_vec());
        let oh = sp.transpose_out(0, sx[2], sw[2], op[0]).unwrap();
        let ow = sp.transpose_out(1, sx[3], sw[3], op[1]).unwrap();
        let mut y = vec![0.0; sx[0] * sw[1] * oh * ow];
        for n in 0..sx[0] {
            for o in 0..sw[1] {
                let bias = b.map_or(0.0, |b| b.get(&[o]).unwrap());
                y[(n * sw[1] + o) * oh * ow..][..oh * ow].iter_mut().for_each(|v| *v = bias);
                for c in 0..sx[1] {
                    for i in 0..sx[2] {
                        for j in 0..sx[3] {
                            for ki in 0..sw[2] {
                                for kj in 0..sw[3] {
                                    let (Some(h), Some(v)) = (
                                        tap(i, ki, sp.stride[0], sp.padding[0], sp.dilation[0], oh),
                                        tap(j, kj, sp.stride[1], sp.padding[1], sp.dilation[1], ow),
                                    ) else {
                                        continue;
                                    };
                                    y[((n * sw[1] + o) * oh + h) * ow + v] +=
                                        x.get(&[n, c, i, j]).unwrap() * w.get(&[c, o, ki, kj]).unwrap();
                                }
                            }
                        }
                    }
                }
            }
        }
        Tensor::from_vec(y, &[sx[0], sw[1], oh, ow])
    }

    fn close(a: &Tensor<f64>, b: &Tensor<f64>, what: &str) {
        assert_eq!(a.shape(), b.shape(), "{what}");
        for (i, (x, y)) in a.to_vec().iter().zip(b.to_vec()).enumerate() {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
        }
    }

    /// Random cases: odd sizes, strides 1–3, padding, dilation, 1×1 to 5×5 and non-square
    /// kernels, batch 1 to 3.
    fn cases() -> Vec<([usize; 4], [usize; 4], Conv2dSpec)> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut out = vec![
            ([1, 1, 28, 28], [4, 1, 4, 4], Conv2dSpec::new(2, 1)),
            ([2, 3, 7, 9], [2, 3, 1, 1], Conv2dSpec::default()),
            ([1, 2, 11, 11], [3, 2, 5, 5], Conv2dSpec::new(1, 2)),
            ([3, 2, 9, 8], [2, 2, 3, 3], Conv2dSpec::new(3, 1).with_dilation(2)),
            ([1, 1, 5, 5], [1, 1, 5, 5], Conv2dSpec::default()),
        ];
        for _ in 0..12 {
            let (kh, kw) = (rng.random_range(1..=5), rng.random_range(1..=5));
            let spec = Conv2dSpec {
                stride: [rng.random_range(1..=3), rng.random_range(1..=3)],
                padding: [rng.random_range(0..=2), rng.random_range(0..=2)],
                dilation: [rng.random_range(1..=2), rng.random_range(1..=2)],
            };
            let (h, w) = (rng.random_range(kh * 2..=13), rng.random_range(kw * 2..=13));
            let (n, c, o) = (rng.random_range(1..=3), rng.random_range(1..=4), rng.random_range(1..=4));
            out.push(([n, c, h, w], [o, c, kh, kw], spec));
        }
        out
    }

    #[test]
    fn conv2d_matches_the_direct_loops() {
        let mut rng = StdRng::seed_from_u64(1);
        for (sx, sw, spec) in cases() {
            let x = Tensor::<f64>::randn(&sx, &mut rng);
            let w = Tensor::<f64>::randn(&sw, &mut rng);
            let b = Tensor::<f64>::randn(&[sw[0]], &mut rng);
            let what = format!("{sx:?} {sw:?} {spec:?}");
            close(&x.conv2d(&w, Some(&b), spec), &direct_conv(&x, &w, Some(&b), spec), &what);
            close(&x.conv2d(&w, None, spec), &direct_conv(&x, &w, None, spec), &what);
            // f32 agrees with f64 to f32's precision.
            let y32 = x.cast::<f32>().conv2d(&w.cast(), Some(&b.cast()), spec).cast::<f64>();
            let y64 = x.conv2d(&w, Some(&b), spec);
            let scale = 1.0 + y64.to_vec().iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = (&y32 - &y64).to_vec().iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(err < 1e-5 * scale, "{what}: f32 off by {err}");
        }
    }

    #[test]
    fn conv_transpose2d_matches_the_direct_loops() {
        let mut rng = StdRng::seed_from_u64(2);
        for (sx, sw, spec) in cases() {
            // The transposed convolution of the same geometry: input shaped like the
            // convolution's output, weight [in, out, kh, kw].
            let (oh, ow) = (spec.conv_out(0, sx[2], sw[2]).unwrap(), spec.conv_out(1, sx[3], sw[3]).unwrap());
            for op in [[0, 0], [spec.stride[0] - 1, spec.stride[1] - 1]] {
                let x = Tensor::<f64>::randn(&[sx[0], sw[0], oh, ow], &mut rng);
                let w = Tensor::<f64>::randn(&[sw[0], sw[1], sw[2], sw[3]], &mut rng);
                let b = Tensor::<f64>::randn(&[sw[1]], &mut rng);
                let what = format!("{sx:?} {sw:?} {spec:?} {op:?}");
                let y = x.conv_transpose2d(&w, Some(&b), spec, op);
                close(&y, &direct_transpose(&x, &w, Some(&b), spec, op), &what);
            }
        }
    }

    /// The backward rules against their definitions: ∂x is the transposed convolution of
    /// ∂Y (the adjoint), ∂W sums ∂Y times the pixel each tap read, ∂b sums ∂Y; and for the
    /// transposed convolution ∂x is the convolution of ∂Y.
    #[test]
    fn backward_rules_match_their_definitions() {
        let mut rng = StdRng::seed_from_u64(3);
        let all = ConvWants { input: true, weight: true, bias: true };
        let mut transposed = 0;
        for (sx, sw, spec) in cases() {
            let what = format!("{sx:?} {sw:?} {spec:?}");
            let x = Tensor::<f64>::randn(&sx, &mut rng);
            let w = Tensor::<f64>::randn(&sw, &mut rng);
            let (y, saved) = x.try_conv2d_saved(&w, None, spec).unwrap();
            let gy = Tensor::<f64>::randn(y.shape(), &mut rng);
            let grads = x.conv2d_backward(&w, &gy, spec, all, None).unwrap();
            // The forward's saved column matrix gives the same bits.
            let reused = x.conv2d_backward(&w, &gy, spec, all, Some(&saved)).unwrap();
            assert_eq!(reused.weight.unwrap().to_vec(), grads.weight.as_ref().unwrap().to_vec(), "{what}");
            // The convolution is linear in x: ⟨conv(v), gy⟩ = ⟨v, ∂x⟩ for every v exactly
            // when ∂x is right; so for a random v.
            let v = Tensor::<f64>::randn(&sx, &mut rng);
            let lhs = (&v.conv2d(&w, None, spec) * &gy).sum().item();
            let rhs = (&v * grads.input.as_ref().unwrap()).sum().item();
            assert!((lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()), "{what}: ∂x {lhs} vs {rhs}");
            // The convolution is linear in W too: ⟨conv_x(u), gy⟩ = ⟨u, ∂W⟩.
            let u = Tensor::<f64>::randn(&sw, &mut rng);
            let lhs = (&x.conv2d(&u, None, spec) * &gy).sum().item();
            let rhs = (&u * grads.weight.as_ref().unwrap()).sum().item();
            assert!((lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()), "{what}: ∂W {lhs} vs {rhs}");
            close(
                grads.bias.as_ref().unwrap(),
                &gy.sum_axis(3, false).sum_axis(2, false).sum_axis(0, false),
                &what,
            );

            // The transposed convolution: input shaped like y, weight [o, c, kh, kw].
            let xt = Tensor::<f64>::randn(y.shape(), &mut rng);
            // The output padding that maps back to x's size, when one below the stride does.
            let op =
                [0, 1].map(|a| sx[2 + a] - spec.transpose_out(a, y.shape()[2 + a], sw[2 + a], 0).unwrap());
            if op[0] >= spec.stride[0] || op[1] >= spec.stride[1] {
                continue;
            }
            transposed += 1;
            let (yt, saved) = xt.try_conv_transpose2d_saved(&w, None, spec, op).unwrap();
            assert_eq!(yt.shape(), &sx, "{what}");
            let gyt = Tensor::<f64>::randn(&sx, &mut rng);
            let grads = xt.conv_transpose2d_backward(&w, &gyt, spec, op, all, None).unwrap();
            let reused = xt.conv_transpose2d_backward(&w, &gyt, spec, op, all, Some(&saved)).unwrap();
            assert_eq!(reused.weight.unwrap().to_vec(), grads.weight.as_ref().unwrap().to_vec(), "{what}");
            close(grads.input.as_ref().unwrap(), &direct_conv(&gyt, &w, None, spec), &what);
            let lhs = (&xt.conv_transpose2d(&u, None, spec, op) * &gyt).sum().item();
            let rhs = (&u * grads.weight.as_ref().unwrap()).sum().item();
            assert!((lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()), "{what}: transposed ∂W {lhs} vs {rhs}");
            close(
                grads.bias.as_ref().unwrap(),
                &gyt.sum_axis(3, false).sum_axis(2, false).sum_axis(0, false),
                &what,
            );
        }
        assert!(transposed >= 8, "only {transposed} cases checked the transposed convolution");
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_op() {
        let x = Tensor::<f32>::zeros(&[1, 2, 5, 5]);
        let e = x.try_conv2d(&Tensor::zeros(&[3, 1, 3, 3]), None, Conv2dSpec::default()).unwrap_err();
        assert!(e.to_string().contains("conv2d"), "{e}");
        let e = x.try_conv2d(&Tensor::zeros(&[3, 2, 7, 7]), None, Conv2dSpec::default()).unwrap_err();
        assert!(e.to_string().contains("larger than the padded input"), "{e}");
        let e =
            x.try_conv2d(&Tensor::zeros(&[3, 2, 3, 3]), Some(&Tensor::zeros(&[2])), Conv2dSpec::default());
        assert!(e.unwrap_err().to_string().contains("bias"));
        let e = x.try_conv2d(&Tensor::zeros(&[3, 2, 3, 3]), None, Conv2dSpec::new(0, 0)).unwrap_err();
        assert!(e.to_string().contains("stride"), "{e}");
        let e = x.try_conv_transpose2d(&Tensor::zeros(&[2, 1, 3, 3]), None, Conv2dSpec::new(2, 0), [2, 0]);
        assert!(e.unwrap_err().to_string().contains("output padding"));
        // A forward's saved state handed to the backward of another geometry.
        let w = Tensor::zeros(&[3, 2, 3, 3]);
        let (_, saved) = x.try_conv2d_saved(&w, None, Conv2dSpec::new(2, 1)).unwrap();
        let all = ConvWants { input: true, weight: true, bias: true };
        let e =
            x.conv2d_backward(&w, &Tensor::zeros(&[1, 3, 3, 3]), Conv2dSpec::default(), all, Some(&saved));
        assert!(e.unwrap_err().to_string().contains("saved state of another convolution"));
    }
}
