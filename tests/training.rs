//! End-to-end: a short run on real MNIST data learns and writes its files, and a run resumed
//! from a checkpoint continues bit for bit.

use std::path::PathBuf;

use vae::checkpoint;
use vae::config::{Activation, ElboConfig, Init, LrStage, Objective, SigmaHead, StochasticLayer, VaeConfig};
use vae::run::{run, RunOptions, CHECKPOINT, CURVES, METRICS, SUMMARY};
use vae::train::TrainConfig;

fn temp_out(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vae-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A small, quick configuration: 3,000 training images, a 2-D latent space.
fn options(epochs: usize, out: PathBuf) -> RunOptions {
    RunOptions {
        train: TrainConfig {
            epochs,
            train_limit: Some(3000),
            model: VaeConfig { hidden: vec![64], latent: 2, ..VaeConfig::default() },
            ..TrainConfig::default()
        },
        data_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        out_dir: out,
        iwae_k: 0,
        resume: None,
        force: false,
        progress: false,
        detect_anomaly: false,
    }
}

#[test]
fn a_short_run_learns_and_writes_everything() {
    let out = temp_out("smoke");
    let mut opts = options(2, out.clone());
    opts.iwae_k = 8;
    let mut lines = Vec::new();
    let summary = run(&opts, |l| lines.push(l.to_string())).unwrap();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(
        lines[4].starts_with("importance-weighted bound, k = 8, on 10000 test images: about "),
        "{}",
        lines[4]
    );
    assert_eq!(lines[2], format!("active_units {} of 2", summary["active_units"]));
    let seconds = summary["total_train_seconds"].as_f64().unwrap();
    assert_eq!(lines[3], format!("trained 2 epochs in {seconds:.1} seconds"));
    assert!(lines[0].starts_with("epoch 1 train_neg_elbo "), "{}", lines[0]);
    let metrics = std::fs::read_to_string(out.join(METRICS)).unwrap();
    let rows: Vec<Vec<f64>> =
        metrics.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(metrics.lines().next().unwrap(), "epoch,train_neg_elbo,test_neg_elbo,epoch_seconds");
    assert_eq!(rows.len(), 2);
    // Learning: the test bound improves, and after 48 steps is far below the ~540 nats of
    // an untrained model.
    assert!(rows[1][2] < rows[0][2] && rows[1][2] < 300.0, "{rows:?}");
    let test = summary["test_neg_elbo"].as_f64().unwrap();
    let iwae = summary["test_iwae_nll"].as_f64().unwrap();
    // The importance-weighted bound (k = 8) is tighter than the ELBO, but not absurdly so.
    assert!(iwae < test && iwae > test - 20.0, "iwae {iwae} vs elbo {test}");
    for f in [
        CHECKPOINT,
        SUMMARY,
        CURVES,
        "reconstructions.png",
        "samples.png",
        "manifold.png",
        "latent_scatter.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// Runs `total` epochs straight, and `split` epochs then a resume to `total`, with the
/// training configuration `edit` makes; asserts the same parameters, steps and metrics.
fn assert_resume_is_exact(name: &str, total: usize, split: usize, edit: impl Fn(&mut RunOptions)) {
    let opts = |epochs: usize, out: PathBuf| {
        let mut o = options(epochs, out);
        edit(&mut o);
        o
    };
    let (straight, parts) = (temp_out(&format!("{name}-straight")), temp_out(&format!("{name}-split")));
    run(&opts(total, straight.clone()), |_| {}).unwrap();
    run(&opts(split, parts.clone()), |_| {}).unwrap();
    let mut resumed = opts(total, parts.clone());
    resumed.resume = Some(parts.join(CHECKPOINT));
    run(&resumed, |_| {}).unwrap();

    let mut cfg = opts(total, straight.clone()).train;
    cfg.model.input = 784;
    let (a, a_verified) = checkpoint::load(&straight.join(CHECKPOINT), &cfg).unwrap();
    let (b, b_verified) = checkpoint::load(&parts.join(CHECKPOINT), &cfg).unwrap();
    assert!(a_verified && b_verified);
    assert_eq!((a.epoch, b.epoch), (total, total));
    assert_eq!(a.optimizer.steps, b.optimizer.steps);
    for ((name, x), y) in
        a.model.params.names().iter().zip(a.model.params.tensors()).zip(b.model.params.tensors())
    {
        assert_eq!(x.to_vec(), y.to_vec(), "parameter {name} differs");
    }
    for (ma, mb) in a.history.iter().zip(&b.history) {
        assert_eq!((ma.train_neg_elbo, ma.test_neg_elbo), (mb.train_neg_elbo, mb.test_neg_elbo));
    }
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&parts).unwrap();
}

#[test]
fn resuming_continues_bit_for_bit() {
    assert_resume_is_exact("plain", 2, 1, |_| {});
}

/// Stopped inside a learning-rate stage, an importance-weighted run of a deeper tanh model
/// with Glorot weights resumes exactly (the rate is a function of the epoch alone); so does
/// one with two stochastic layers and Burda's σ = exp(linear).
#[test]
fn a_scheduled_iwae_run_resumes_bit_for_bit_inside_a_stage() {
    scheduled_iwae_resume("scheduled", Vec::new(), SigmaHead::Logvar);
    let upper = vec![StochasticLayer { hidden: vec![8], latent: 3 }];
    scheduled_iwae_resume("two-layers", upper, SigmaHead::LogSigma);
}

fn scheduled_iwae_resume(name: &str, upper: Vec<StochasticLayer>, sigma: SigmaHead) {
    assert_resume_is_exact(name, 3, 2, |o| {
        let t = &mut o.train;
        t.model = VaeConfig {
            hidden: vec![32, 16],
            latent: 4,
            activation: Activation::Tanh,
            init: Init::Glorot,
            sigma,
            upper: upper.clone().into(),
            ..VaeConfig::default()
        };
        t.binarize = true;
        t.batch_size = 50;
        t.elbo = ElboConfig { objective: Objective::Iwae, samples: 3, ..ElboConfig::default() };
        t.lr_stages = vec![LrStage { epochs: 1, lr: 1e-3 }, LrStage { epochs: 2, lr: 3e-4 }];
    });
}
