//! The VAE's hot path at batch 128 with the default model (784-400-20, Bernoulli): a full
//! training step (forward, backward, Adam), the forward pass alone, and forward + backward,
//! each at 1 and 2 threads; and the training step of Burda et al.'s model at batch 20, with
//! k = 1 and the IWAE's k = 5 (throughput in floating-point operations of its products, so
//! criterion's "elem/s" reads as FLOP/s); and Adam's update of that model's parameters
//! alone (throughput in the bytes it must move, 28 a parameter, so "B/s" reads against the
//! host's bandwidth, `step_timer --floor`), and three update rules on one parameter in L2
//! and at that size, which tells the update's arithmetic from its bytes; and the noise of
//! one image's k = 5000 evaluation, 250,000 normal draws, from one generator and in blocks
//! on the pool.
//!
//! Run: `cargo bench --bench backward`.

use autograd::Graph;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tensor::Tensor;
use vae::config::Objective;
use vae::elbo::{elbo_with_noise, sample_noise, ElboConfig};
use vae::train::{Parameters, TrainConfig, Trainer};

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let cfg = TrainConfig::default();
    let x = Tensor::<f32>::rand_uniform(&[cfg.batch_size, 784], 0.0, 1.0, &mut rng);
    let noise = sample_noise::<f32, _>(1, cfg.batch_size, cfg.model.latent, &mut rng);
    let elbo_cfg = ElboConfig::default();
    let mut group = c.benchmark_group("vae_step");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut trainer = Trainer::new(cfg.clone());
        group.bench_function(BenchmarkId::new("train_step", format!("{threads}t")), |b| {
            pool.install(|| b.iter(|| black_box(trainer.step(x.clone(), &mut rng).unwrap())))
        });
        let model = &trainer.model;
        group.bench_function(BenchmarkId::new("forward", format!("{threads}t")), |b| {
            pool.install(|| {
                b.iter(|| {
                    let g = Graph::new();
                    black_box(
                        elbo_with_noise(&model.bind(&g), g.constant(x.clone()), &noise, &elbo_cfg)
                            .loss
                            .value(),
                    )
                })
            })
        });
        group.bench_function(BenchmarkId::new("forward_backward", format!("{threads}t")), |b| {
            pool.install(|| {
                b.iter(|| {
                    let g = Graph::new();
                    let loss =
                        elbo_with_noise(&model.bind(&g), g.constant(x.clone()), &noise, &elbo_cfg).loss;
                    black_box(loss.backward())
                })
            })
        });
    }
    group.finish();
}

/// Burda et al.'s one-stochastic-layer model (784-200-200-50 tanh, batch 20, binary pixels):
/// a training step with the Monte Carlo ELBO (k = 1, the "VAE" row) and with the
/// importance-weighted bound (k = 5, the "IWAE" row), at 1 and 2 threads.
fn bench_burda(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let x =
        Tensor::<f32>::rand_uniform(&[20, 784], 0.0, 1.0, &mut rng).map(|p| if p > 0.5 { 1.0 } else { 0.0 });
    let mut group = c.benchmark_group("burda_step");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50);
    for (name, objective, k) in [("vae_k1", Objective::ElboMc, 1), ("iwae_k5", Objective::Iwae, 5)] {
        let cfg = TrainConfig::burda(objective, k, 1);
        group.throughput(criterion::Throughput::Elements(2 * cfg.step_macs() as u64));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut trainer = Trainer::new(cfg.clone());
            group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
                pool.install(|| b.iter(|| black_box(trainer.step(x.clone(), &mut rng).unwrap())))
            });
        }
    }
    group.finish();
}

/// Adam's update of the 425,284 parameters of Burda et al.'s one-stochastic-layer model
/// with gradients of the same shapes, at 1 and 2 threads: the part of the step that is
/// memory traffic rather than products.
fn bench_adam(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let cfg = TrainConfig::burda(Objective::ElboMc, 1, 1);
    let mut group = c.benchmark_group("adam_update");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let Trainer { mut model, mut optimizer, .. } = Trainer::new(cfg.clone());
        let grads: Vec<Tensor<f32>> = model
            .params()
            .tensors()
            .iter()
            .map(|p| Tensor::rand_uniform(p.shape(), -1e-2, 1e-2, &mut rng))
            .collect();
        let len: usize = grads.iter().map(Tensor::len).sum();
        group.throughput(criterion::Throughput::Bytes(28 * len as u64));
        group.bench_function(BenchmarkId::new("burda", format!("{threads}t")), |b| {
            pool.install(|| b.iter(|| optimizer.step(model.params_mut(), black_box(&grads)).unwrap()))
        });
    }
    group.finish();
}

/// Where Adam's time goes: one thread's update of one parameter of `n` elements by three
/// rules, at a length whose parameter, gradient and state fit in L2 (8,192) and at the
/// Burda model's parameter count (425,284), throughput in elements. SGD with momentum
/// streams 20 bytes an element with two multiply-adds; Adagrad streams the same bytes with a
/// square root and a division; Adam streams 28 with both. Where a rule costs the same in
/// L2 as from L3, its arithmetic, not its bytes, sets its pace. Adam again with its data
/// pushed out of L3 before each update, and again after the core idles for 5 ms.
fn bench_update_rules(c: &mut Criterion) {
    use vae::config::{OptimizerConfig, OptimizerKind};
    use vae::nn::ParamSet;
    use vae::optim::Optimizer;
    let mut rng = StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group("update_rules");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2)).sample_size(30);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let rules = [
        ("adam", OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-4 }),
        ("adagrad", OptimizerKind::Adagrad { eps: 1e-10 }),
        ("sgd_momentum", OptimizerKind::Sgd { momentum: 0.9 }),
    ];
    for (name, kind) in rules {
        for n in [8192, 425_284] {
            let mut params = ParamSet::new();
            params.push("w", Tensor::<f32>::rand_uniform(&[n], -1.0, 1.0, &mut rng));
            let grads = [Tensor::<f32>::rand_uniform(&[n], -1e-2, 1e-2, &mut rng)];
            let mut optimizer =
                Optimizer::new(OptimizerConfig { kind, ..OptimizerConfig::default() }, &params);
            group.throughput(criterion::Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, n), |b| {
                pool.install(|| b.iter(|| optimizer.step(&mut params, black_box(&grads)).unwrap()))
            });
            if name == "adam" && n > 8192 {
                // Each update after a pass over 32 MiB of other memory (the host's L3), and
                // after 5 ms of arithmetic on registers alone (a few training steps' time),
                // to tell where a training step's update finds its moments.
                let mut other = vec![0u8; 32 << 20];
                let mut evict = || other.iter_mut().step_by(64).for_each(|x| *x = x.wrapping_add(1));
                let mut idle = || {
                    let (start, mut x) = (Instant::now(), 1.0f64);
                    while start.elapsed() < Duration::from_millis(5) {
                        x = black_box(x * 1.000_000_1 + 1e-9);
                    }
                };
                let cases: [(&str, &mut (dyn FnMut() + Send)); 2] =
                    [("adam_after_32mib", &mut evict), ("adam_after_5ms_idle", &mut idle)];
                for (case, before) in cases {
                    group.bench_function(BenchmarkId::new(case, n), |b| {
                        pool.install(|| {
                            b.iter_batched(
                                &mut *before,
                                |()| optimizer.step(&mut params, black_box(&grads)).unwrap(),
                                criterion::BatchSize::PerIteration,
                            )
                        })
                    });
                }
            }
        }
    }
    group.finish();
}

/// One image's noise in the k = 5000 evaluation of Burda et al.'s model (5000 draws of 50
/// latent units): `Tensor::randn` on one generator, `Tensor::randn_blocks` at 1 and 2
/// threads (throughput in draws).
fn bench_noise(c: &mut Criterion) {
    let mut group = c.benchmark_group("eval_noise");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    let shape = [5000, 1, 50];
    group.throughput(criterion::Throughput::Elements(5000 * 50));
    let mut rng = StdRng::seed_from_u64(0);
    group.bench_function("randn", |b| b.iter(|| Tensor::<f32>::randn(black_box(&shape), &mut rng)));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("randn_blocks", format!("{threads}t")), |b| {
            pool.install(|| b.iter(|| Tensor::<f32>::randn_blocks(black_box(&shape), &mut rng)))
        });
    }
    group.finish();
}

// No plots: the workspace builds plotters with only the ab_glyph font backend (for
// `vae`'s curves.png), where criterion's plot text would find no font.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench, bench_burda, bench_adam, bench_update_rules, bench_noise
}
criterion_main!(benches);
