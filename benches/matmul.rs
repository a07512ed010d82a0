//! GFLOP/s of `Tensor::matmul` on the VAE's shapes (batch 128), on the Burda model's (batch
//! 20, and the k = 5000 evaluation's largest product) and on squares, beside a
//! direct single-threaded `matrixmultiply::sgemm` call on the same data and strides.
//!
//! Criterion's throughput is set to 2·m·n·k "elements", so its `Gelem/s` reads as GFLOP/s.
//! Run: `cargo bench --bench matmul`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::Duration;
use tensor::Tensor;

/// One product: a name, `m, k, n`, and whether each operand is a transposed view.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
}

const fn case(name: &'static str, m: usize, k: usize, n: usize, a_t: bool, b_t: bool) -> Case {
    Case { name, m, k, n, a_t, b_t }
}

const CASES: &[Case] = &[
    // Forward: x·Wᵀ with W stored [out, in], so the right operand is a transposed view.
    case("fwd_128x784x400", 128, 784, 400, false, true),
    case("fwd_128x400x784", 128, 400, 784, false, true),
    case("fwd_128x400x20", 128, 400, 20, false, true),
    case("fwd_128x20x400", 128, 20, 400, false, true),
    // Weight gradients gᵀ·x: the left operand is a transposed view of the [128, out] gradient.
    case("wgrad_400x128x784", 400, 128, 784, true, false),
    case("wgrad_784x128x400", 784, 128, 400, true, false),
    case("wgrad_20x128x400", 20, 128, 400, true, false),
    case("wgrad_400x128x20", 400, 128, 20, true, false),
    // Input gradients g·W.
    case("igrad_128x400x784", 128, 400, 784, false, false),
    case("igrad_128x784x400", 128, 784, 400, false, false),
    case("igrad_128x20x400", 128, 20, 400, false, false),
    case("igrad_128x400x20", 128, 400, 20, false, false),
    // Burda et al.'s model at batch 20 (the IWAE's k = 5 decoder sees 100 rows), and the
    // k = 5000 evaluation's largest product: 5000 draws through the 200 → 784 output layer.
    case("burda_fwd_20x784x200", 20, 784, 200, false, true),
    case("burda_fwd_20x200x200", 20, 200, 200, false, true),
    case("burda_fwd_100x200x784", 100, 200, 784, false, true),
    case("burda_wgrad_200x20x784", 200, 20, 784, true, false),
    case("burda_wgrad_784x20x200", 784, 20, 200, true, false),
    case("burda_igrad_20x200x784", 20, 200, 784, false, false),
    case("burda_igrad_20x784x200", 20, 784, 200, false, false),
    case("burda_igrad_100x784x200", 100, 784, 200, false, false),
    case("burda_wgrad_784x100x200", 784, 100, 200, true, false),
    case("burda_wgrad_200x100x784", 200, 100, 784, true, false),
    case("eval_fwd_5000x200x784", 5000, 200, 784, false, true),
    case("square_256", 256, 256, 256, false, false),
    case("square_512", 512, 512, 512, false, false),
    case("square_1024", 1024, 1024, 1024, false, false),
];

/// A `rows×cols` operand (a transposed view of `[cols, rows]` storage when `transposed`),
/// and the same elements as a raw slice with their row and column strides.
fn operand(rows: usize, cols: usize, transposed: bool, rng: &mut StdRng) -> (Tensor<f32>, Raw) {
    let (stored, strides) = if transposed { ([cols, rows], (1, rows)) } else { ([rows, cols], (cols, 1)) };
    let t = Tensor::randn(&stored, rng);
    let raw = (t.to_vec(), strides.0, strides.1);
    (if transposed { t.t() } else { t }, raw)
}

/// An operand's storage and its row and column strides.
type Raw = (Vec<f32>, usize, usize);

/// matrixmultiply's GEMM on the raw operands, with nothing of the tensor API around it.
fn direct_sgemm(m: usize, k: usize, n: usize, a: &Raw, b: &Raw, c: &mut [f32]) {
    tensor::internals::gemm_slices(m, k, n, 1.0, (&a.0, a.1, a.2), (&b.0, b.1, b.2), 0.0, c);
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let threads = rayon::current_num_threads();
    let mut group = c.benchmark_group("matmul");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    for cs in CASES {
        let (a, raw_a) = operand(cs.m, cs.k, cs.a_t, &mut rng);
        let (b, raw_b) = operand(cs.k, cs.n, cs.b_t, &mut rng);
        group.throughput(Throughput::Elements((2 * cs.m * cs.n * cs.k) as u64));
        // On a worker with the others awake, as a training step runs its products.
        group.bench_function(BenchmarkId::new(format!("tensor_{threads}t"), cs.name), |bch| {
            tensor::with_workers_awake(|| bch.iter(|| black_box(a.matmul(&b))))
        });
        group.bench_function(BenchmarkId::new("tensor_1t", cs.name), |bch| {
            one_thread.install(|| bch.iter(|| black_box(a.matmul(&b))))
        });
        let mut out = vec![0.0f32; cs.m * cs.n];
        group.bench_function(BenchmarkId::new("matrixmultiply_1t", cs.name), |bch| {
            bch.iter(|| direct_sgemm(cs.m, cs.k, cs.n, black_box(&raw_a), black_box(&raw_b), &mut out))
        });
    }
    group.finish();
    step_products(c);
}

/// All fourteen matrix products of one VAE training step at batch 128 (419.8 MFLOP: forward
/// 167, weight gradients 167, input gradients 86), back to back as the step runs them, with
/// the same transposed views.
fn step_products(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let t = |r: usize, c: usize, rng: &mut StdRng| Tensor::<f32>::randn(&[r, c], rng);
    let (b, d, h, z) = (128, 784, 400, 20);
    let x = t(b, d, &mut rng);
    let (w1, w21, w22, w3, w4) =
        (t(h, d, &mut rng), t(z, h, &mut rng), t(z, h, &mut rng), t(h, z, &mut rng), t(d, h, &mut rng));
    let (h1, mu, h3, g4, g3, gmu) = (
        t(b, h, &mut rng),
        t(b, z, &mut rng),
        t(b, h, &mut rng),
        t(b, d, &mut rng),
        t(b, h, &mut rng),
        t(b, z, &mut rng),
    );
    // (output, lhs, rhs) of each product.
    let products: Vec<(Tensor<f32>, Tensor<f32>)> = vec![
        (x.clone(), w1.t()),
        (h1.clone(), w21.t()),
        (h1.clone(), w22.t()),
        (mu.clone(), w3.t()),
        (h3.clone(), w4.t()),
        (g4.t(), h3.clone()),
        (g4.clone(), w4.clone()),
        (g3.t(), mu.clone()),
        (g3.clone(), w3.clone()),
        (gmu.t(), h1.clone()),
        (gmu.t(), h1.clone()),
        (gmu.clone(), w21.clone()),
        (gmu.clone(), w22.clone()),
        (g3.t(), x.clone()),
    ];
    let flops: usize = products.iter().map(|(a, b)| 2 * a.shape()[0] * a.shape()[1] * b.shape()[1]).sum();
    assert_eq!(flops, 419_840_000);
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let threads = rayon::current_num_threads();
    let mut group = c.benchmark_group("vae_step_products");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    group.throughput(Throughput::Elements(flops as u64));
    let run = || {
        for (a, b) in &products {
            black_box(a.matmul(b));
        }
    };
    group.bench_function(format!("tensor_{threads}t"), |bch| bch.iter(run));
    group.bench_function("tensor_1t", |bch| one_thread.install(|| bch.iter(run)));
    group.finish();
}

// No plots: the workspace builds plotters with only the ab_glyph font backend (for
// `vae`'s curves.png), where criterion's plot text would find no font.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
