//! A whole run, as the `mnist_vae` example drives it: load data, train (or resume), write
//! metrics, checkpoints and images after each epoch, then the final evaluation.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tensor::Tensor;

use crate::checkpoint;
use crate::data::{Dataset, Mnist};
use crate::elbo::iwae_log_likelihood;
use crate::error::{Result, VaeError};
use crate::images::{manifold_grid, write_grid, write_scatter};
use crate::io::atomic_write;
use crate::plot::write_curves;
use crate::train::{stream_rng, Stream, TrainConfig, Trainer};

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The training configuration.
    pub train: TrainConfig,
    /// The directory of the four IDX files.
    pub data_dir: PathBuf,
    /// Where outputs go.
    pub out_dir: PathBuf,
    /// Samples of the importance-weighted bound on the test set after training (0: skip).
    pub iwae_k: usize,
    /// A checkpoint to continue from.
    pub resume: Option<PathBuf>,
    /// Overwrite an output directory that holds another configuration's checkpoint.
    pub force: bool,
    /// Show progress bars.
    pub progress: bool,
    /// Check every op for NaN and infinity and name the first that produced one.
    pub detect_anomaly: bool,
}

/// The file names a run writes in its output directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// Per-epoch metrics.
pub const METRICS: &str = "metrics.csv";
/// The final summary.
pub const SUMMARY: &str = "summary.json";
/// The per-epoch train and test negative ELBO, drawn.
pub const CURVES: &str = "curves.png";

/// Most decoder rows the IWAE evaluation keeps live at once.
const IWAE_ROWS: usize = 8192;

fn bar(len: usize, show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(&format!("{what} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"))
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

/// Refuses to reuse `out_dir` when it holds a checkpoint of another configuration, unless
/// resuming or forced.
fn check_out_dir(opts: &RunOptions) -> Result<()> {
    let ckpt = opts.out_dir.join(CHECKPOINT);
    if opts.resume.is_some() || opts.force || !ckpt.exists() {
        return Ok(());
    }
    let theirs = checkpoint::read_config(&ckpt)?;
    opts.train.check_same_run(&theirs).map_err(|d| VaeError::Checkpoint {
        msg: format!(
            "the output directory {} holds a checkpoint of {d}; pass --resume {} to continue it, --force to overwrite it, or choose another --out",
            opts.out_dir.display(),
            ckpt.display()
        ),
        path: ckpt.clone(),
    })
}

fn write_metrics(path: &Path, trainer: &Trainer) -> Result<()> {
    let mut csv = String::from("epoch,train_neg_elbo,test_neg_elbo,epoch_seconds\n");
    for m in &trainer.history {
        writeln!(csv, "{},{:.4},{:.4},{:.3}", m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds)
            .unwrap();
    }
    atomic_write(path, csv.as_bytes())
}

/// Writes the reconstructions, samples and (for a 2-D latent space) the manifold and the
/// scatter of test means.
fn write_images(out: &Path, trainer: &Trainer, test: &Dataset) -> Result<()> {
    let model = &trainer.model;
    let (h, w) = test.image_shape();
    let mut rng = stream_rng(trainer.config.seed, trainer.epoch, Stream::Final);
    // Four rows of eight test images, each above its reconstruction (decoder mean at z = mu).
    let n = 32.min(test.len());
    let idx: Vec<usize> = (0..n).collect();
    let x = test.intensities::<f32>(&idx);
    let recon = model.decode_mean(&model.encode_mean(&x));
    let mut rows = Vec::new();
    for r in 0..n.div_ceil(8) {
        let len = 8.min(n - r * 8);
        rows.push(x.narrow(0, r * 8, len));
        rows.push(recon.narrow(0, r * 8, len));
    }
    let stacked: Vec<f32> = rows.iter().flat_map(Tensor::to_vec).collect();
    write_grid(&out.join("reconstructions.png"), &Tensor::from_vec(stacked, &[2 * n, h * w]), h, w, 8)?;
    let z = Tensor::<f32>::randn(&[64, model.config.latent], &mut rng);
    write_grid(&out.join("samples.png"), &model.decode_mean(&z), h, w, 8)?;
    if model.config.latent == 2 {
        let grid = 20;
        write_grid(&out.join("manifold.png"), &model.decode_mean(&manifold_grid(grid)), h, w, grid)?;
        let all: Vec<usize> = (0..test.len()).collect();
        let mut means = Vec::with_capacity(test.len() * 2);
        for chunk in all.chunks(1000) {
            means.extend(model.encode_mean(&test.intensities::<f32>(chunk)).to_vec());
        }
        let labels: Vec<u8> = all.iter().map(|&i| test.label(i)).collect();
        // The key: the first test image of each digit.
        let legend: Vec<(u8, Vec<f32>, usize, usize)> = (0..10u8)
            .filter_map(|d| labels.iter().position(|&l| l == d))
            .map(|i| (labels[i], test.intensities::<f32>(&[i]).to_vec(), h, w))
            .collect();
        let means = Tensor::from_vec(means, &[test.len(), 2]);
        write_scatter(&out.join("latent_scatter.png"), &means, &labels, &legend, 600, 4.0)?;
    }
    Ok(())
}

/// The importance-weighted estimate of the test negative log-likelihood, per image (nats).
pub fn iwae_nll(trainer: &Trainer, test: &Dataset, k: usize, progress: bool) -> f64 {
    let mut rng = stream_rng(trainer.config.seed, trainer.epoch, Stream::Final);
    let per_call = (IWAE_ROWS / k.max(1)).max(1);
    let pb = bar(test.len(), progress, &format!("iwae k={k}"));
    let all: Vec<usize> = (0..test.len()).collect();
    let (model, binarize) = (&trainer.model, trainer.config.binarize);
    // On a rayon worker, so the kernels fork without a hand-off.
    let total: f64 = rayon::scope(|_| {
        let mut total = 0.0;
        for chunk in all.chunks(per_call) {
            let x = test.batch::<f32, _>(chunk, binarize.then_some(&mut rng));
            let ll = iwae_log_likelihood(model, &x, k, IWAE_ROWS, &mut rng);
            total -= ll.to_vec().iter().map(|&v| v as f64).sum::<f64>();
            pb.inc(chunk.len() as u64);
        }
        total
    });
    pb.finish_and_clear();
    total / test.len().max(1) as f64
}

/// Runs training as `opts` asks, reporting each epoch's line through `log`; returns the
/// summary that is also written to `summary.json`. The data decides the model's input
/// size (`opts.train.model.input` is replaced by the pixels per image of the data).
pub fn run(opts: &RunOptions, mut log: impl FnMut(&str)) -> Result<Value> {
    let mnist = Mnist::load(&opts.data_dir)?;
    let (mut train, test) = (mnist.train, mnist.test);
    let mut opts = opts.clone();
    opts.train.model.input = train.dim();
    let opts = &opts;
    opts.train.validate()?;
    if let Some(n) = opts.train.train_limit {
        train.truncate(n);
    }
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| VaeError::io(&opts.out_dir, e))?;
    check_out_dir(opts)?;
    let mut trainer = match &opts.resume {
        Some(path) => checkpoint::load(path, &opts.train)?,
        None => Trainer::new(opts.train.clone()),
    };
    trainer.set_detect_anomaly(opts.detect_anomaly);
    if opts.resume.is_some() {
        log(&format!("resumed after epoch {} of {}", trainer.epoch, opts.train.epochs));
    }
    let ckpt = opts.out_dir.join(CHECKPOINT);
    while trainer.epoch < opts.train.epochs {
        let pb = bar(train.len(), opts.progress, &format!("epoch {}", trainer.epoch + 1));
        let m = trainer.run_epoch(&train, &test, |done| pb.set_position(done as u64))?;
        pb.finish_and_clear();
        log(&format!(
            "epoch {} train_neg_elbo {:.4} test_neg_elbo {:.4} seconds {:.2}",
            m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds
        ));
        checkpoint::save(&ckpt, &trainer)?;
        write_metrics(&opts.out_dir.join(METRICS), &trainer)?;
        write_curves(&opts.out_dir.join(CURVES), &trainer.history)?;
    }
    write_images(&opts.out_dir, &trainer, &test)?;
    let mut summary = json!({
        "config": opts.train.to_json(),
        "epochs_completed": trainer.epoch,
        "parameters": trainer.model.params.numel(),
        "test_neg_elbo": trainer.history.last().map(|m| m.test_neg_elbo),
        "train_neg_elbo": trainer.history.last().map(|m| m.train_neg_elbo),
        "total_train_seconds": trainer.history.iter().map(|m| m.epoch_seconds).sum::<f64>(),
    });
    if opts.iwae_k > 0 {
        let start = Instant::now();
        let nll = iwae_nll(&trainer, &test, opts.iwae_k, opts.progress);
        let secs = start.elapsed().as_secs_f64();
        log(&format!("test_iwae_nll {nll:.4} k {} seconds {secs:.1}", opts.iwae_k));
        summary["test_iwae_nll"] = json!(nll);
        summary["iwae_k"] = json!(opts.iwae_k);
        summary["iwae_seconds"] = json!(secs);
    }
    let text = serde_json::to_string_pretty(&summary).expect("JSON");
    atomic_write(&opts.out_dir.join(SUMMARY), text.as_bytes())?;
    Ok(summary)
}
