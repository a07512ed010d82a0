//! Same bits at any thread count: every parallel kernel, reduction and matrix product is
//! run on rayon pools of 1, 2, 3, 7, 32 and 64 threads and compared bit for bit with the
//! one-thread result. The pools really have that many threads, whatever the machine, so
//! the splits a 64-core host would make are exercised here too (at 32 threads a block can
//! start past the edge of a product unless blocks are counted from their width).

use std::sync::OnceLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::{ThreadPool, ThreadPoolBuilder};
use tensor::internals::{gemm_slices, OWN_SPLIT_MIN_MACS, PAR_MIN_LEN, PAR_MIN_MACS};
use tensor::{Element, Tensor};

const THREADS: [usize; 6] = [1, 2, 3, 7, 32, 64];

/// One pool per thread count, built once for the whole test binary.
fn pools() -> &'static [ThreadPool] {
    static POOLS: OnceLock<Vec<ThreadPool>> = OnceLock::new();
    POOLS.get_or_init(|| {
        THREADS.iter().map(|&n| ThreadPoolBuilder::new().num_threads(n).build().unwrap()).collect()
    })
}

/// The bits of every element, so that NaNs and signed zeros compare exactly.
fn bits<T: Element>(t: &Tensor<T>) -> Vec<u64> {
    t.to_vec().iter().map(|v| v.to_f64_lossless().to_bits()).collect()
}

/// Runs `f` on every pool and asserts each result has the one-thread result's bits.
fn same_bits_on_every_pool<T: Element>(what: &str, f: impl Fn() -> Vec<Tensor<T>> + Sync) {
    let pools = pools();
    let want: Vec<Vec<u64>> = pools[0].install(|| f().iter().map(bits).collect());
    for (pool, threads) in pools.iter().zip(THREADS).skip(1) {
        assert_eq!(pool.current_num_threads(), threads);
        let got: Vec<Vec<u64>> = pool.install(|| f().iter().map(bits).collect());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g == w, "{what}: result {i} differs between 1 and {threads} threads");
        }
    }
}

/// Standard normal draws of `shape`, contiguous, in precision `T`.
fn randn<T: Element>(shape: &[usize], rng: &mut StdRng) -> Tensor<T> {
    Tensor::<f64>::randn(shape, rng).cast()
}

/// A `rows×cols` operand with values from `seed`, presented as contiguous (0), transposed
/// (1), narrowed out of a larger buffer (2) or broadcast along its rows (3).
fn operand<T: Element>(rows: usize, cols: usize, kind: u8, seed: u64) -> Tensor<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    match kind % 4 {
        0 => randn(&[rows, cols], &mut rng),
        1 => randn::<T>(&[cols, rows], &mut rng).t(),
        2 => randn::<T>(&[rows + 3, cols + 5], &mut rng).narrow(0, 1, rows).narrow(1, 2, cols),
        _ => randn::<T>(&[1, cols], &mut rng).broadcast_to(&[rows, cols]),
    }
}

/// Products of every kind the engine runs: plain, accumulate (`alpha`, `beta`), and batched
/// with the left operand broadcast over the batch.
fn products<T: Element>(m: usize, k: usize, n: usize, ka: u8, kb: u8, seed: u64) -> Vec<Tensor<T>> {
    let a = operand::<T>(m, k, ka, seed);
    let b = operand::<T>(k, n, kb, seed + 1);
    let mut acc = operand::<T>(m, n, 0, seed + 2);
    acc.matmul_acc(T::from_f64_lossy(0.75), &a, &b, T::from_f64_lossy(-1.25));
    let batched = a.matmul(&b.unsqueeze(0).broadcast_to(&[2, k, n]));
    vec![a.matmul(&b), acc, batched]
}

/// Sizes from 1 to about 1,200 per side, with the product capped so a case stays fast; about
/// half the cases are large enough to split.
fn mkn() -> impl Strategy<Value = (usize, usize, usize)> {
    (1usize..=1200, 1usize..=1200, 1usize..=1200).prop_map(|(m, k, n)| {
        let cap = 48 << 20;
        let k = k.min((cap / (m * n)).max(1));
        (m, k, n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(debug_assertions) { 12 } else { 40 }, ..ProptestConfig::default() })]

    #[test]
    fn matmul_same_bits_at_any_thread_count((m, k, n) in mkn(), ka in 0u8..4, kb in 0u8..4, seed in 0u64..1000) {
        same_bits_on_every_pool(&format!("f32 {m}x{k}x{n} kinds {ka}{kb}"), || products::<f32>(m, k, n, ka, kb, seed));
        same_bits_on_every_pool(&format!("f64 {m}x{k}x{n} kinds {ka}{kb}"), || products::<f64>(m, k, n, ka, kb, seed));
    }

    #[test]
    fn kernels_same_bits_at_any_thread_count(rows in 1usize..700, cols in 1usize..700, seed in 0u64..1000) {
        same_bits_on_every_pool(&format!("f32 kernels {rows}x{cols}"), || kernels::<f32>(rows, cols, seed));
        same_bits_on_every_pool(&format!("f64 kernels {rows}x{cols}"), || kernels::<f64>(rows, cols, seed));
    }
}

/// Every elementwise kernel (contiguous, strided and broadcast paths, in place and not),
/// every reduction (all axes and one axis) and the fused zip-sum, on one `rows×cols` input.
fn kernels<T: Element>(rows: usize, cols: usize, seed: u64) -> Vec<Tensor<T>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = randn::<T>(&[rows, cols], &mut rng);
    let y = randn::<T>(&[rows, cols], &mut rng);
    let col = randn::<T>(&[rows, 1], &mut rng);
    let xt = x.t(); // strided
    let mut acc = x.clone();
    acc.axpy(T::from_f64_lossy(0.5), &y);
    acc.zip_inplace(&col, |a, c| a * c);
    acc.map_inplace(|a| a.tanh());
    let mut acc_t = x.t().contiguous();
    acc_t.add_assign_t(&y.t());
    vec![
        x.exp(),
        xt.sigmoid(),
        xt.contiguous(),
        &x * &y,
        &xt * &y.t(),
        &x + &col,
        x.softplus() - col.broadcast_to(&[rows, cols]),
        acc,
        acc_t,
        x.sum(),
        xt.sum(),
        x.max(),
        x.mean(),
        x.logsumexp(),
        x.sum_axis(0, false),
        x.sum_axis(1, true),
        xt.max_axis(1, false),
        x.logsumexp_axis(1, false),
        x.logsumexp_axis(0, true),
        x.zip_sum_last(&y, |a, b| a * b),
        x.unsqueeze(0).broadcast_to(&[3, rows, cols]).sum_to(&[rows, 1]),
    ]
}

/// The property test above would pass vacuously if no case split; check that the sizes it
/// draws do reach the parallel paths.
#[test]
fn the_sizes_drawn_reach_the_parallel_paths() {
    const { assert!(1200 * 1200 * 33 >= PAR_MIN_MACS) };
    const { assert!(700 * 700 >= 4 * PAR_MIN_LEN) };
    pools()[3].install(|| {
        assert!(tensor::internals::parallel(PAR_MIN_LEN));
        assert!(!tensor::internals::parallel(PAR_MIN_LEN - 1));
    });
    pools()[0].install(|| assert!(!tensor::internals::parallel(PAR_MIN_LEN)));
}

/// Normal draws made in blocks on the pool's threads: the same values on every pool, at
/// lengths of one block, of a part of one and of many (past the parallel bound), and no
/// block repeats another's values.
#[test]
fn normal_draws_in_blocks_same_bits_at_any_thread_count() {
    for n in [5, 16_384, 5 * 16_384 + 7, 300_000] {
        let what = format!("randn_blocks of {n}");
        same_bits_on_every_pool(&what, || {
            vec![Tensor::<f32>::randn_blocks(&[n], &mut StdRng::seed_from_u64(2))]
        });
        same_bits_on_every_pool(&what, || {
            vec![Tensor::<f64>::randn_blocks(&[n, 1], &mut StdRng::seed_from_u64(3))]
        });
    }
    const { assert!(300_000 >= 4 * PAR_MIN_LEN) };
    let v = Tensor::<f64>::randn_blocks(&[300_000], &mut StdRng::seed_from_u64(1)).to_vec();
    let (head, rest) = v.split_at(16_384);
    assert!(rest.chunks(16_384).all(|block| block[..8] != head[..8]), "a block repeats the first");
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "mean {mean}, variance {var}");
}

/// `x·Wᵀ + b` in one product (`matmul_bias`, the bias written a few rows at a time by the
/// kernels of our own) gives the bits of the bias written into every row and the product
/// accumulated into it, through each kernel and split: the dot kernel (1, 5 and 20 rows,
/// whole and in column blocks), the axpy kernel (100 rows; with AVX-512 also 300 and 1000),
/// matrixmultiply (depth 300), `f64`, a batched product, and on every pool.
#[test]
fn products_into_a_bias_keep_the_bits_of_writing_it_first() {
    let mut rng = StdRng::seed_from_u64(23);
    fn both<T: Element>(x: &Tensor<T>, w: &Tensor<T>, b: &Tensor<T>) -> Vec<Tensor<T>> {
        let shape = [x.shape()[0], w.shape()[0]];
        let mut want = b.broadcast_to(&shape).contiguous();
        want.matmul_acc(T::one(), x, &w.t(), T::one());
        vec![want, x.matmul_bias(&w.t(), b)]
    }
    for (m, k, n) in [
        (1, 784, 200),
        (5, 784, 1000),
        (20, 200, 784),
        (100, 200, 784),
        (300, 50, 200),
        (1000, 200, 784),
        (130, 300, 70),
    ] {
        let (x, w, b) =
            (randn::<f32>(&[m, k], &mut rng), randn::<f32>(&[n, k], &mut rng), randn::<f32>(&[n], &mut rng));
        let what = format!("{m}x{k}·({n}x{k})ᵀ + b");
        let got = both(&x, &w, &b);
        assert_eq!(bits(&got[1]), bits(&got[0]), "{what}");
        same_bits_on_every_pool(&what, || vec![x.matmul_bias(&w.t(), &b)]);
    }
    let (x, w, b) =
        (randn::<f64>(&[70, 30], &mut rng), randn::<f64>(&[40, 30], &mut rng), randn::<f64>(&[40], &mut rng));
    let got = both(&x, &w, &b);
    assert_eq!(bits(&got[1]), bits(&got[0]), "f64");
    // Batched, one batch after another and (past PAR_MIN_MACS) batches on the pool.
    for (nb, m, k, n) in [(3, 7, 20, 9), (4, 64, 200, 784)] {
        let x3 = randn::<f32>(&[nb, m, k], &mut rng);
        let (w, b) = (randn::<f32>(&[n, k], &mut rng), randn::<f32>(&[n], &mut rng));
        let mut want = b.broadcast_to(&[nb, m, n]).contiguous();
        want.matmul_acc(1.0, &x3, &w.t(), 1.0);
        let what = format!("batched {nb}x{m}x{k}·({n}x{k})ᵀ + b");
        assert_eq!(bits(&x3.matmul_bias(&w.t(), &b)), bits(&want), "{what}");
        same_bits_on_every_pool(&what, || vec![x3.matmul_bias(&w.t(), &b)]);
        assert!(x3.try_matmul_bias(&w.t(), &randn::<f32>(&[n - 1], &mut rng)).is_err());
    }
    const { assert!(4 * 64 * 200 * 784 >= PAR_MIN_MACS) };
}

/// A layer's forward `x·Wᵀ` and input gradient `G·W` at small batches, which the kernels of
/// our own compute whole (1 row), in column blocks (2 and 5 rows) or in row blocks as even
/// as the rows allow (6 to 32 rows), split among up to 64 threads, and the same products at
/// 33 rows (matrixmultiply): the same bits on every pool.
#[test]
fn small_batch_layer_products_same_bits_at_any_thread_count() {
    let mut rng = StdRng::seed_from_u64(11);
    // 1000 outputs, so that products from 6 rows up are large enough to split.
    let w = randn::<f32>(&[1000, 784], &mut rng);
    const { assert!(6 * 784 * 1000 >= PAR_MIN_MACS) };
    const { assert!(784 * 1000 < OWN_SPLIT_MIN_MACS && 2 * 784 * 1000 >= OWN_SPLIT_MIN_MACS) };
    const { assert!(5 * 784 * 1000 < PAR_MIN_MACS) };
    for m in [1, 2, 5, 6, 20, 31, 32, 33] {
        let x = randn::<f32>(&[m, 784], &mut rng);
        let bias = randn::<f32>(&[m, 1000], &mut rng);
        let g = randn::<f32>(&[m, 1000], &mut rng);
        same_bits_on_every_pool(&format!("{m}x784·(1000x784)ᵀ and {m}x1000·1000x784"), || {
            let mut acc = bias.clone();
            acc.matmul_acc(1.0, &x, &w.t(), 1.0);
            let batched = x.unsqueeze(0).broadcast_to(&[3, m, 784]).matmul(&w.t());
            let mut grad = x.clone();
            grad.matmul_acc(1.0, &g, &w, 1.0);
            vec![x.matmul(&w.t()), acc, batched, g.matmul(&w), grad]
        });
    }
}

/// Few-row products in the range that splits by columns, at widths that make a block's
/// columns pass through its tile in several runs (20 rows by 784 columns, 32 by 1000) and in
/// one: `x·Wᵀ` (the dot kernel) and `G·W` (the axpy kernel), written and accumulated.
#[test]
fn column_split_products_same_bits_at_any_thread_count() {
    let mut rng = StdRng::seed_from_u64(12);
    for (m, k, n) in [(20, 200, 784), (32, 100, 1000), (2, 784, 1000), (5, 784, 1000)] {
        assert!(m * k * n >= OWN_SPLIT_MIN_MACS && m * k * n < PAR_MIN_MACS, "{m}x{k}x{n}");
        let x = randn::<f32>(&[m, k], &mut rng);
        let w = randn::<f32>(&[n, k], &mut rng);
        let v = randn::<f32>(&[n, n], &mut rng).narrow(0, 0, k);
        let bias = randn::<f32>(&[m, n], &mut rng);
        same_bits_on_every_pool(&format!("{m}x{k}·({n}x{k})ᵀ and {m}x{k}·{k}x{n}"), || {
            let mut acc = bias.clone();
            acc.matmul_acc(0.5, &x, &w.t(), 1.5);
            let mut grad = bias.clone();
            grad.matmul_acc(1.0, &x, &v, 1.0);
            vec![x.matmul(&w.t()), acc, x.matmul(&v), grad]
        });
    }
}

/// Products of more rows than split by columns that the axpy kernel takes: weight gradients
/// `Gᵀ·X` at a batch of 20 (depth 20, 200 or 784 rows) and input gradients `G·W` of 100 rows
/// (an importance-weighted decoder's 20×5 draws), split by rows from `OWN_SPLIT_MIN_MACS`
/// below `PAR_MIN_MACS` and above it, written and accumulated: the same bits on every pool.
#[test]
fn many_row_axpy_products_same_bits_at_any_thread_count() {
    let mut rng = StdRng::seed_from_u64(13);
    for (rows, batch, cols) in
        [(784, 20, 200), (200, 20, 784), (100, 200, 200), (100, 784, 200), (127, 30, 300)]
    {
        assert!(rows * batch * cols >= OWN_SPLIT_MIN_MACS, "{rows}x{batch}x{cols}");
        // The weight gradient's left operand is the transposed view of a [batch, rows] gradient.
        let g = randn::<f32>(&[batch, rows], &mut rng);
        let x = randn::<f32>(&[batch, cols], &mut rng);
        let bias = randn::<f32>(&[rows, cols], &mut rng);
        same_bits_on_every_pool(&format!("{rows}x{batch}x{cols}"), || {
            let mut acc = bias.clone();
            acc.matmul_acc(0.7, &g.t(), &x, 1.3);
            let lhs = g.t().contiguous();
            vec![g.t().matmul(&x), acc, lhs.matmul(&x)]
        });
    }
}

/// Layer forwards `x·Wᵀ` of 33 to 128 rows, which go through a row-major copy of `Wᵀ` (the
/// axpy kernel reads it), copied on several threads
/// from 65,536 elements: written and accumulated, the same bits on every pool, and each
/// element within rounding of the sum in `f64`.
#[test]
fn forwards_through_a_row_major_copy_same_bits_at_any_thread_count() {
    let mut rng = StdRng::seed_from_u64(17);
    for (m, k, n) in [(33, 200, 200), (100, 200, 784), (127, 9, 40), (128, 784, 400)] {
        let x = randn::<f32>(&[m, k], &mut rng);
        let w = randn::<f32>(&[n, k], &mut rng);
        let bias = randn::<f32>(&[m, n], &mut rng);
        let got = x.matmul(&w.t()).to_vec();
        let (xv, wv) = (x.to_vec(), w.to_vec());
        for (e, &g) in got.iter().enumerate() {
            let (i, j) = (e / n, e % n);
            let want: f64 = (0..k).map(|p| f64::from(xv[i * k + p]) * f64::from(wv[j * k + p])).sum();
            assert!(
                (f64::from(g) - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{m}x{k}x{n} at ({i}, {j}): {g} vs {want}"
            );
        }
        same_bits_on_every_pool(&format!("{m}x{k}·({n}x{k})ᵀ"), || {
            let mut acc = bias.clone();
            acc.matmul_acc(0.5, &x, &w.t(), 1.5);
            vec![x.matmul(&w.t()), acc]
        });
    }
}

/// Products of more than 128 rows: on AVX-512 the axpy kernel takes those at most 256 deep
/// with `alpha` = 1, elsewhere matrixmultiply (a layer's `Wᵀ` read through a row-major copy
/// from 512 rows). Either way the bits are matrixmultiply's reading the operands in place,
/// one call for the whole product, written and accumulated (`beta` 1 and 0.5), and the same
/// on every pool.
#[test]
fn many_row_products_keep_matrixmultiplys_bits() {
    let mut rng = StdRng::seed_from_u64(19);
    for (m, k, n) in [
        (512, 40, 64),
        (700, 200, 100),
        (600, 20, 50),
        (5000, 50, 40),
        (300, 256, 33),
        (200, 20, 70),
        (520, 300, 40),
    ] {
        let x = randn::<f32>(&[m, k], &mut rng);
        let c = randn::<f32>(&[m, n], &mut rng);
        let xv = x.to_vec();
        for transposed in [true, false] {
            // `Wᵀ` as a layer stores it (a transposed view of [n, k]), or `W` in rows.
            let (b, bv, strides) = if transposed {
                let w = randn::<f32>(&[n, k], &mut rng);
                (w.t(), w.to_vec(), (1, k))
            } else {
                let w = randn::<f32>(&[k, n], &mut rng);
                (w.clone(), w.to_vec(), (n, 1))
            };
            for beta in [0.0, 1.0, 0.5] {
                let mut want = c.clone();
                gemm_slices(
                    m,
                    k,
                    n,
                    1.0,
                    (&xv, k, 1),
                    (&bv, strides.0, strides.1),
                    beta,
                    want.make_mut_slice(),
                );
                let what = format!("{m}x{k}x{n}, b transposed {transposed}, beta {beta}");
                let got = || {
                    let mut acc = c.clone();
                    acc.matmul_acc(1.0, &x, &b, beta);
                    acc
                };
                assert_eq!(bits(&got()), bits(&want), "{what}");
                same_bits_on_every_pool(&what, || vec![got()]);
            }
        }
    }
}

/// Column blocks whose count does not divide the columns: on a 32-thread pool 305 columns
/// in blocks of ⌈305/19⌉ = 17 would give a 19th block starting at column 306, past the
/// output, unless the blocks are counted from the block width.
#[test]
fn the_product_that_overflowed_at_32_threads() {
    for n in [305, 289, 4999] {
        assert!(64 * 512 * n >= PAR_MIN_MACS);
        same_bits_on_every_pool(&format!("64x512x{n}"), || {
            let a = operand::<f32>(64, 512, 0, 1);
            let b = operand::<f32>(512, n, 2, 2);
            vec![a.matmul(&b)]
        });
    }
}

/// A convolution, its transpose and both backward rules, at the convolutional VAE's shapes
/// and at odd ones: every unfold, fold, channel-major copy and product among them is large
/// enough to split.
fn convolutions<T: Element>(
    n: usize,
    c: usize,
    side: usize,
    o: usize,
    k: usize,
    stride: usize,
    seed: u64,
) -> Vec<Tensor<T>> {
    use tensor::{Conv2dSpec, ConvWants};
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = Conv2dSpec::new(stride, k / 2);
    let all = ConvWants { input: true, weight: true, bias: true };
    let x = randn::<T>(&[n, c, side, side], &mut rng);
    let w = randn::<T>(&[o, c, k, k], &mut rng);
    let b = randn::<T>(&[o], &mut rng);
    // The convolution's backward reuses its forward's column matrix; the transposed one's
    // builds its own.
    let (y, saved) = x.try_conv2d_saved(&w, Some(&b), spec).unwrap();
    let gy = randn::<T>(y.shape(), &mut rng);
    let g = x.conv2d_backward(&w, &gy, spec, all, Some(&saved)).unwrap();
    // The transposed convolution maps y's shape back to x's (the output padding makes up
    // what the strided convolution rounded away).
    let op = [0, 1].map(|a| side - spec.transpose_out(a, y.shape()[2 + a], k, 0).unwrap());
    let yt = gy.conv_transpose2d(&w, Some(&randn::<T>(&[c], &mut rng)), spec, op);
    let gt = gy.conv_transpose2d_backward(&w, &yt, spec, op, all, None).unwrap();
    vec![y, g.input.unwrap(), g.weight.unwrap(), g.bias.unwrap(), yt, gt.input.unwrap(), gt.weight.unwrap()]
}

#[test]
fn convolutions_same_bits_at_any_thread_count() {
    for (n, c, side, o, k, stride) in
        [(64, 1, 28, 32, 4, 2), (32, 32, 14, 64, 4, 2), (5, 3, 17, 7, 5, 1), (1, 8, 33, 4, 3, 3)]
    {
        let what = format!("conv n {n} c {c} side {side} o {o} k {k} stride {stride}");
        same_bits_on_every_pool(&format!("f32 {what}"), || convolutions::<f32>(n, c, side, o, k, stride, 5));
        same_bits_on_every_pool(&format!("f64 {what}"), || convolutions::<f64>(n, c, side, o, k, stride, 5));
    }
}
