//! The VAE's hot path at batch 128 with the default model (784-400-20, Bernoulli): a full
//! training step (forward, backward, Adam), the forward pass alone, and forward + backward,
//! each at 1 and 2 threads.
//!
//! Run: `cargo bench --bench backward`.

use autograd::Graph;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::Duration;
use tensor::Tensor;
use vae::elbo::{elbo_with_noise, sample_noise, ElboConfig};
use vae::train::{TrainConfig, Trainer};

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

criterion_group!(benches, bench);
criterion_main!(benches);
