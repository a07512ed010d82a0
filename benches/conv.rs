//! GFLOP/s of `conv2d` and `conv_transpose2d`, forward and backward, at the shapes of the
//! convolutional VAE (`--arch conv`, batch 128), beside the GFLOP/s of the one matrix
//! product each of them runs (the same `m, k, n`, as `Tensor::matmul` of contiguous
//! operands): the difference is what unfolding, folding and the layout changes cost.
//!
//! Criterion's throughput is set to 2 · multiply-adds "elements", so `Gelem/s` reads as
//! GFLOP/s (the backward does two products' worth, or one when the input is data).
//! Run: `cargo bench --bench conv`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::Duration;
use tensor::{Conv2dSpec, ConvWants, Tensor};

/// One layer: a name, whether it is transposed, channels in and out, and the input side.
struct Layer {
    name: &'static str,
    transpose: bool,
    cin: usize,
    cout: usize,
    side: usize,
}

const LAYERS: &[Layer] = &[
    Layer { name: "conv1_1to32_28", transpose: false, cin: 1, cout: 32, side: 28 },
    Layer { name: "conv2_32to64_14", transpose: false, cin: 32, cout: 64, side: 14 },
    Layer { name: "convT1_64to32_7", transpose: true, cin: 64, cout: 32, side: 7 },
    Layer { name: "convT2_32to1_14", transpose: true, cin: 32, cout: 1, side: 14 },
];

const BATCH: usize = 128;
const K: usize = 4;

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let threads = rayon::current_num_threads();
    let spec = Conv2dSpec::new(2, 1);
    let mut group = c.benchmark_group("conv");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    for l in LAYERS {
        let x = Tensor::<f32>::randn(&[BATCH, l.cin, l.side, l.side], &mut rng);
        let (w, y) = if l.transpose {
            let w = Tensor::<f32>::randn(&[l.cin, l.cout, K, K], &mut rng);
            let y = x.conv_transpose2d(&w, None, spec, [0, 0]);
            (w, y)
        } else {
            let w = Tensor::<f32>::randn(&[l.cout, l.cin, K, K], &mut rng);
            let y = x.conv2d(&w, None, spec);
            (w, y)
        };
        let b = Tensor::<f32>::zeros(&[l.cout]);
        let gy = Tensor::<f32>::randn(y.shape(), &mut rng);
        // The convolution's product: the smaller side's pixels times both channel counts
        // times the kernel's area, whichever way it runs.
        let pixels = BATCH * l.side.min(y.shape()[2]).pow(2);
        let macs = pixels * l.cin * l.cout * K * K;
        let (m, k, n) =
            if l.transpose { (l.cout * K * K, l.cin, pixels) } else { (l.cout, l.cin * K * K, pixels) };
        let (ga, gb) = (Tensor::<f32>::randn(&[m, k], &mut rng), Tensor::<f32>::randn(&[k, n], &mut rng));
        // The first layer's input is data: its backward computes no input gradient.
        let wants = ConvWants { input: l.cin != 1, weight: true, bias: true };
        let forward = || {
            if l.transpose {
                x.conv_transpose2d(&w, Some(&b), spec, [0, 0])
            } else {
                x.conv2d(&w, Some(&b), spec)
            }
        };
        // The backward reuses what the forward kept, as a training step's does.
        let saved = if l.transpose {
            x.try_conv_transpose2d_saved(&w, Some(&b), spec, [0, 0]).unwrap().1
        } else {
            x.try_conv2d_saved(&w, Some(&b), spec).unwrap().1
        };
        let backward = || {
            if l.transpose {
                x.conv_transpose2d_backward(&w, &gy, spec, [0, 0], wants, Some(&saved)).unwrap()
            } else {
                x.conv2d_backward(&w, &gy, spec, wants, Some(&saved)).unwrap()
            }
        };
        for (label, pool) in [(format!("{threads}t"), None), ("1t".to_string(), Some(&one_thread))] {
            let on_pool = |bch: &mut criterion::Bencher, f: &(dyn Fn() + Sync)| match pool {
                Some(p) => p.install(|| bch.iter(f)),
                None => bch.iter(f),
            };
            group.throughput(Throughput::Elements(2 * macs as u64));
            group.bench_function(BenchmarkId::new(format!("forward_{label}"), l.name), |bch| {
                on_pool(bch, &|| drop(black_box(forward())))
            });
            group.bench_function(BenchmarkId::new(format!("gemm_{label}"), l.name), |bch| {
                on_pool(bch, &|| drop(black_box(ga.matmul(&gb))))
            });
            let products = if wants.input { 2 } else { 1 };
            group.throughput(Throughput::Elements(2 * products * macs as u64));
            group.bench_function(BenchmarkId::new(format!("backward_{label}"), l.name), |bch| {
                on_pool(bch, &|| drop(black_box(backward())))
            });
        }
    }
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
