//! The elementwise engines and reductions give the same bits on every instruction set this
//! CPU runs (`tensor::internals::Path`: the baseline, AVX2 + FMA, AVX-512): the loops are
//! compiled once per path, and only the width of their instructions may differ. Lengths
//! cover the vector tails (1 to 70 elements, and a few long enough to split over the pool),
//! offsets and broadcasts; values include NaN, ±∞, ±0 and the fast functions' clamps.
//!
//! The path limit is process-wide, so this file is its own test binary with one test.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tensor::internals::{limit_path, Path};
use tensor::{sigmoid_scalar, softplus_scalar, Element, Tensor};

/// Random values with the special ones mixed in.
fn values(n: usize, rng: &mut StdRng) -> Vec<f32> {
    const SPECIAL: [f32; 9] =
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 88.8, -104.5, 1e-30, -9.0];
    (0..n)
        .map(|_| {
            if rng.random_range(0..10) == 0 {
                SPECIAL[rng.random_range(0..SPECIAL.len())]
            } else {
                rng.random_range(-30.0..30.0)
            }
        })
        .collect()
}

/// The bits of every element, every NaN as one: where two NaNs meet, which one's sign and
/// payload an x86 instruction passes on depends on the order of its operands, which the
/// compiler chooses per instruction set. Every other bit must match.
fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.to_vec().iter().map(|v| if v.is_nan() { f32::NAN.to_bits() } else { v.to_bits() }).collect()
}

/// Every engine on one set of operands: unary maps (contiguous and strided), binary maps
/// (equal shapes and each broadcast), in-place forms, the fused map-and-sum, and the
/// reductions.
fn everything(x: &Tensor<f32>, y: &Tensor<f32>, row: &Tensor<f32>) -> Vec<Tensor<f32>> {
    let xt = x.transpose(0, 1);
    let mut inplace = x.clone();
    inplace.map_inplace(|v| v.fast_tanh() * 0.5);
    let mut broadcast_inplace = x.clone();
    broadcast_inplace.zip_inplace(row, |a, b| a * b - a.fast_exp());
    let mut column_inplace = x.clone();
    let column = x.sum_axis(1, true);
    column_inplace.zip_inplace(&column, |a, b| a - b);
    vec![
        x.map(|v| v.fast_exp()),
        x.map(|v| v.fast_tanh()),
        x.map(softplus_scalar),
        x.map(sigmoid_scalar),
        xt.map(|v| v.fast_exp() + 1.0),
        x.zip_with(y, |a, b| a * b + a.max(0.0) - softplus_scalar(b)),
        x.zip_with(row, |a, b| a + b),
        row.zip_with(x, |a, b| a - b),
        x.zip_with(&column, |a, b| a * b),
        xt.zip_with(&y.transpose(0, 1), |a, b| a / (b + 2.0)),
        inplace,
        broadcast_inplace,
        column_inplace,
        x.zip_sum_last(y, |logit, target| logit.max(0.0) - logit * target + logit.fast_softplus_tail()),
        x.sum(),
        x.sum_axis(0, false),
        column,
        x.max_axis(1, false),
        x.max(),
        x.logsumexp_axis(1, false),
        x.mean_axis(0, true),
    ]
}

#[test]
fn every_engine_gives_the_same_bits_on_every_path() {
    let paths = Path::available();
    eprintln!("paths compared: {paths:?}");
    let mut rng = StdRng::seed_from_u64(11);
    let mut shapes: Vec<(usize, usize)> = (1..=70).map(|n| (1 + n % 3, n)).collect();
    shapes.extend([(20, 784), (128, 400), (300, 257)]);
    for (rows, cols) in shapes {
        let x = Tensor::from_vec(values(rows * cols, &mut rng), &[rows, cols]);
        let y = Tensor::from_vec(values(rows * cols, &mut rng), &[rows, cols]);
        let row = Tensor::from_vec(values(cols, &mut rng), &[cols]);
        // An operand starting past the front of its storage.
        let offset =
            Tensor::from_vec(values(rows * cols + 3, &mut rng), &[rows * cols + 3]).narrow(0, 3, rows * cols);
        let x_offset = offset.reshape(&[rows, cols]);
        let mut reference: Option<Vec<Vec<u32>>> = None;
        for &path in &paths {
            limit_path(Some(path));
            assert_eq!(Path::detect(), path);
            let mut got: Vec<Vec<u32>> = everything(&x, &y, &row).iter().map(bits).collect();
            got.extend(everything(&x_offset, &y, &row).iter().map(bits));
            match &reference {
                None => reference = Some(got),
                Some(want) => {
                    for (i, (g, w)) in got.iter().zip(want).enumerate() {
                        assert!(g == w, "{path:?}: result {i} at {rows}×{cols} differs from {:?}", paths[0]);
                    }
                }
            }
        }
        limit_path(None);
    }
}
