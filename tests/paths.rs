//! A training step gives the same bits on every vector instruction set this CPU runs with
//! the product kernels of our own (AVX2 + FMA and AVX-512; `tensor::internals::Path`): a
//! few steps of the default model, the convolutional one and Burda et al.'s two-layer IWAE
//! leave bit-identical losses and parameters on each. (On the baseline path the products
//! go to matrixmultiply instead, so the bits differ there by design;
//! `crates/tensor/tests/paths.rs` checks the elementwise engines on that path too.)
//!
//! The path limit is process-wide, so this file is its own test binary with one test.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::internals::{limit_path, Path};
use tensor::Tensor;
use vae::config::{ConvNet, Objective};
use vae::train::{TrainConfig, Trainer};

/// Losses and the bits of every parameter after three steps of `config`.
fn train(config: &TrainConfig) -> (Vec<u64>, Vec<Vec<u32>>) {
    let mut rng = StdRng::seed_from_u64(5);
    let mut trainer = Trainer::new(config.clone());
    let x = Tensor::<f32>::rand_uniform(&[config.batch_size, 784], 0.0, 1.0, &mut rng);
    let losses = (0..3).map(|_| trainer.step(x.clone(), &mut rng).unwrap().to_bits()).collect();
    let params = trainer
        .model
        .params
        .tensors()
        .iter()
        .map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect())
        .collect();
    (losses, params)
}

#[test]
fn a_training_step_gives_the_same_bits_on_every_vector_path() {
    let paths: Vec<Path> = Path::available().into_iter().filter(|&p| p != Path::Portable).collect();
    eprintln!("paths compared: {paths:?}");
    let mut conv = TrainConfig::default();
    conv.model.hidden.clear();
    conv.model.conv = Some(ConvNet { side: 28, channels: vec![8, 16] }).into();
    let configs = [
        ("default model", TrainConfig::default()),
        ("Burda et al.'s one-layer VAE", TrainConfig::burda(Objective::ElboMc, 1, 1)),
        ("two-layer IWAE, k = 5", TrainConfig::burda(Objective::Iwae, 5, 2)),
        ("convolutional model", conv),
    ];
    for (what, config) in &configs {
        let mut reference = None;
        for &path in &paths {
            limit_path(Some(path));
            let got = train(config);
            match &reference {
                None => reference = Some(got),
                Some(want) => {
                    assert!(got.0 == want.0, "{what}: losses differ on {path:?} from {:?}", paths[0]);
                    assert!(got.1 == want.1, "{what}: parameters differ on {path:?} from {:?}", paths[0]);
                }
            }
        }
    }
    limit_path(None);
}
