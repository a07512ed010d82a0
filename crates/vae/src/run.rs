//! A whole run, as the `mnist_vae` example drives it: load data, train (or resume), write
//! metrics, checkpoints and images after each epoch, then the final evaluation.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use tensor::Tensor;

use crate::checkpoint;
use crate::config::{Init, TrainConfig};
use crate::data::{Dataset, Mnist, TEST_BINARIZATION_SEED};
use crate::elbo::iwae_log_likelihood;
use crate::error::{Result, VaeError};
use crate::images::{manifold_grid, write_grid, write_scatter};
use crate::io::atomic_write;
use crate::model::Vae;
use crate::plot::write_curves;
use crate::train::{stream_rng, Stream, Trainer};

/// What a run is asked to do. Each field carries its command-line flag (`mnist_vae`'s).
#[derive(Clone, Debug, clap::Args)]
pub struct RunOptions {
    /// The training configuration.
    #[command(flatten)]
    pub train: TrainConfig,
    /// Directory of the four IDX files (raw or .gz).
    #[arg(id = "data", long = "data", value_name = "DIR", default_value = "data/mnist")]
    pub data_dir: PathBuf,
    /// Output directory.
    #[arg(id = "out", long = "out", value_name = "DIR", default_value = "runs/mnist_vae")]
    pub out_dir: PathBuf,
    /// Samples of the importance-weighted bound on the test set after training (0 = off).
    #[arg(long, default_value_t = 0)]
    pub iwae_k: usize,
    /// Continue from this checkpoint.
    #[arg(long, value_parser = crate::config::cli::readable_file)]
    pub resume: Option<PathBuf>,
    /// Overwrite an output directory that holds another configuration's checkpoint.
    #[arg(long)]
    pub force: bool,
    /// Show progress bars (on the command line: when standard output is a terminal).
    #[arg(skip)]
    pub progress: bool,
    /// Check every op for NaN and infinity, and name the first op and parameter that went
    /// non-finite (slower; like torch.autograd.detect_anomaly).
    #[arg(long)]
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
/// The lock file that keeps a second run out of the same directory.
pub const LOCK: &str = ".lock";

/// The checkpoint kept at the end of learning-rate stage `stage` (from 0).
pub fn stage_checkpoint(stage: usize) -> String {
    format!("checkpoint-stage{stage}.safetensors")
}

/// Most decoder rows the IWAE evaluation keeps live at once.
pub const IWAE_ROWS: usize = 8192;

/// Images per call of the IWAE evaluation with `k` samples: as many as fill [`IWAE_ROWS`].
pub fn iwae_images_per_call(k: usize) -> usize {
    (IWAE_ROWS / k.max(1)).max(1)
}

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

/// Holds the advisory lock on an output directory for the length of a run.
struct OutLock {
    _file: File,
}

/// Locks `dir` for this run (an advisory lock on `dir/.lock`, which also records our pid),
/// or says which process holds it.
fn lock_out_dir(dir: &Path) -> Result<OutLock> {
    let path = dir.join(LOCK);
    refuse_symlink(&path)?;
    let mut file =
        crate::io::no_follow(OpenOptions::new().read(true).write(true).create(true).truncate(false))
            .open(&path)
            .map_err(|e| VaeError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
            return Err(VaeError::io(
                dir,
                std::io::Error::other(format!(
                    "in use by another run{who}; wait for it to finish or choose another --out"
                )),
            ));
        }
        Err(TryLockError::Error(e)) => return Err(VaeError::io(&path, e)),
    }
    let pid = std::process::id().to_string();
    let record = file.set_len(0).and_then(|_| file.write_all(pid.as_bytes())).and_then(|_| file.flush());
    record.map_err(|e| VaeError::io(&path, e))?;
    Ok(OutLock { _file: file })
}

/// Test images above their reconstructions, drawn at the end of a run.
const RECONSTRUCTIONS: &str = "reconstructions.png";
/// Decoded draws from the prior.
const SAMPLES: &str = "samples.png";
/// The decoded grid over a 2-D latent space.
const MANIFOLD: &str = "manifold.png";
/// The test set's encoded means in a 2-D latent space.
const LATENT_SCATTER: &str = "latent_scatter.png";
/// The images a run writes at its end (the last two for a 2-D latent space only).
const IMAGES: [&str; 4] = [RECONSTRUCTIONS, SAMPLES, MANIFOLD, LATENT_SCATTER];

/// Removes the files a run writes (checkpoints, stage checkpoints, metrics, curves, images,
/// summary) from `dir`, and nothing else; returns how many there were.
fn remove_outputs(dir: &Path) -> Result<usize> {
    let ours = |name: &str| {
        [CHECKPOINT, METRICS, SUMMARY, CURVES].contains(&name)
            || IMAGES.contains(&name)
            || name
                .strip_prefix("checkpoint-stage")
                .and_then(|rest| rest.strip_suffix(".safetensors"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let entries = std::fs::read_dir(dir).map_err(|e| VaeError::io(dir, e))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ours(&name) && entry.file_type().is_ok_and(|t| !t.is_dir()) {
            std::fs::remove_file(entry.path()).map_err(|e| VaeError::io(entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What a stopped run left in place: the checkpoint of the last good epoch, or nothing.
fn still_holds(ckpt: &Path, epoch: usize) -> String {
    if epoch == 0 {
        "no checkpoint was written".to_string()
    } else {
        format!("{} still holds epoch {epoch}", ckpt.display())
    }
}

/// Refuses a symbolic link where the run writes a file of its own: following it would
/// overwrite whatever it points to.
fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(VaeError::io(
            path,
            std::io::Error::other("a symbolic link, where the run keeps a file of its own; remove it"),
        )),
        _ => Ok(()),
    }
}

/// Removes the temporary files of writers that died mid-write (`.NAME.tmp-PID`); only
/// called while holding the directory's lock, so no live writer owns one.
fn remove_left_overs(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with('.') && name.contains(".tmp-") && e.file_type().is_ok_and(|t| t.is_file())
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Where training starts: a fresh model, the checkpoint given with `--resume`, or the
/// checkpoint already in `--out` of the same run (continued, never rewound). Refuses an
/// `--out` holding another configuration's checkpoint, or a further-trained one that this
/// run would replace with less, unless `--force`.
fn start(opts: &RunOptions, log: &mut impl FnMut(&str)) -> Result<Trainer> {
    let ckpt = opts.out_dir.join(CHECKPOINT);
    // The directory's checkpoint is read once: for its configuration, and to continue from.
    let existing = match ckpt.symlink_metadata() {
        Ok(_) if !opts.force => {
            let bytes = checkpoint::read_file(&ckpt)?;
            let (config, epochs) = checkpoint::read_meta(&ckpt, &bytes)?;
            Some((config, epochs, bytes))
        }
        _ => None,
    };
    let out = opts.out_dir.display();
    if let Some((theirs, ..)) = &existing {
        opts.train.check_same_run(theirs).map_err(|d| VaeError::Checkpoint {
            msg: format!(
                "the output directory {out} holds a checkpoint of {d}; pass --resume {} to continue it, --force to overwrite it, or choose another --out",
                ckpt.display()
            ),
            path: ckpt.clone(),
        })?;
    }
    let existing_epochs = existing.as_ref().map(|(_, e, _)| *e);
    let (trainer, from) = match (&opts.resume, existing) {
        (Some(path), _) => {
            let (trainer, verified) = checkpoint::load(path, &opts.train)?;
            if let Some(done) = existing_epochs.filter(|&done| done > trainer.epoch) {
                return Err(VaeError::Checkpoint {
                    msg: format!(
                        "the output directory {out} holds this run trained for {done} epochs, further than --resume's {}; resuming from it would lose epochs: pass --resume {} or --force",
                        trainer.epoch,
                        ckpt.display()
                    ),
                    path: path.clone(),
                });
            }
            if !verified {
                log(&format!(
                    "note: {} has no checksum (written before checksums); loaded unverified",
                    path.display()
                ));
            }
            (trainer, format!("resumed from {}", path.display()))
        }
        (None, Some((_, _, bytes))) => {
            let (trainer, _) = checkpoint::from_bytes(&ckpt, &bytes, &opts.train)?;
            (trainer, format!("continuing the run in {out} (same configuration; --force starts over)"))
        }
        (None, None) => return Ok(Trainer::new(opts.train.clone())),
    };
    let (done, want) = (trainer.epoch, opts.train.epochs);
    if done > want {
        return Err(VaeError::Checkpoint {
            msg: format!(
                "holds {done} epochs, more than --epochs {want}; pass --epochs {done} or more to continue it"
            ),
            path: opts.resume.clone().unwrap_or(ckpt),
        });
    }
    log(&format!(
        "{from} after epoch {done} of {want}{}",
        if done == want { "; nothing left to train" } else { "" }
    ));
    Ok(trainer)
}

fn write_metrics(path: &Path, trainer: &Trainer) -> Result<()> {
    let mut csv = String::from("epoch,train_neg_elbo,test_neg_elbo,epoch_seconds\n");
    for m in &trainer.history {
        writeln!(csv, "{},{:.4},{:.4},{:.3}", m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds)
            .unwrap();
    }
    atomic_write(path, csv.as_bytes())
}

/// The files that follow an epoch's checkpoint, from the trainer's state: the stage
/// checkpoint at the end of a learning-rate stage (kept to evaluate later), `metrics.csv`
/// and `curves.png`. With `only_missing`, an existing stage checkpoint is left alone.
fn write_after_checkpoint(opts: &RunOptions, trainer: &Trainer, only_missing: bool) -> Result<()> {
    if let Some(stage) = opts.train.stage_ending_at(trainer.epoch) {
        let path = opts.out_dir.join(stage_checkpoint(stage));
        if !(only_missing && path.exists()) {
            checkpoint::save(&path, trainer)?;
        }
    }
    write_metrics(&opts.out_dir.join(METRICS), trainer)?;
    write_curves(&opts.out_dir.join(CURVES), &trainer.history)
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
    write_grid(&out.join(RECONSTRUCTIONS), &Tensor::from_vec(stacked, &[2 * n, h * w]), h, w, 8)?;
    let z = model.sample_prior(64, &mut rng);
    write_grid(&out.join(SAMPLES), &model.decode_mean(&z), h, w, 8)?;
    if model.config.latent == 2 {
        let grid = 20;
        write_grid(&out.join(MANIFOLD), &model.decode_mean(&manifold_grid(grid)), h, w, grid)?;
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
        write_scatter(&out.join(LATENT_SCATTER), &means, &labels, &legend, 600, 4.0)?;
    }
    Ok(())
}

/// The importance-weighted estimate of the test negative log-likelihood, per image (nats):
/// the mean of [`iwae_nll_per_image`] with the run's own draws. A model trained on binarized
/// images is evaluated on one fixed binarization of the test set
/// ([`TEST_BINARIZATION_SEED`]), the same for every run.
pub fn iwae_nll(trainer: &Trainer, test: &Dataset, k: usize, progress: bool) -> f64 {
    let mut rng = iwae_rng(trainer);
    let nll = iwae_nll_per_image(&trainer.model, &trainer.config, test, k, &mut rng, progress);
    nll.iter().sum::<f64>() / test.len().max(1) as f64
}

/// The generator of a run's importance-weighted evaluation after its last epoch.
pub fn iwae_rng(trainer: &Trainer) -> StdRng {
    stream_rng(trainer.config.seed, trainer.epoch, Stream::Final)
}

/// Each test image's importance-weighted estimate of `−log p(x)` (nats), in order, with `k`
/// draws each from `rng`, [`iwae_images_per_call`] images at a time; with the binarized
/// test set of [`iwae_nll`] where the configuration binarizes.
pub fn iwae_nll_per_image(
    model: &Vae<f32>,
    config: &TrainConfig,
    test: &Dataset,
    k: usize,
    rng: &mut StdRng,
    progress: bool,
) -> Vec<f64> {
    let per_call = iwae_images_per_call(k);
    let pb = bar(test.len(), progress, &format!("iwae k={k}"));
    let all: Vec<usize> = (0..test.len()).collect();
    let binary = config.binarize.then(|| test.binarized(TEST_BINARIZATION_SEED));
    let test = binary.as_ref().unwrap_or(test);
    // On a rayon worker with the others awake, like the training step.
    let nll = tensor::with_workers_awake(|| {
        let mut nll = Vec::with_capacity(test.len());
        for chunk in all.chunks(per_call) {
            let x = test.intensities::<f32>(chunk);
            let ll = iwae_log_likelihood(model, &x, k, IWAE_ROWS, &mut *rng);
            nll.extend(ll.to_vec().iter().map(|&v| -f64::from(v)));
            pb.inc(chunk.len() as u64);
        }
        nll
    });
    pb.finish_and_clear();
    nll
}

/// Longest importance-weighted evaluation a run starts: 30 days.
pub const IWAE_LONGEST_SECONDS: f64 = 30.0 * 86400.0;

/// Estimated seconds of the importance-weighted evaluation with `k` samples of `images`
/// images for `model` on this machine: one image's call with up to [`IWAE_ROWS`] samples
/// is timed after one untimed call (on noise of its own, so no run's random stream moves),
/// and the rest scaled by the products' multiply-adds.
pub fn iwae_seconds(model: &Vae<f32>, config: &TrainConfig, images: usize, k: usize) -> f64 {
    let probe_k = k.clamp(1, IWAE_ROWS);
    let x = Tensor::<f32>::zeros(&[1, model.config.input]);
    let mut rng = StdRng::seed_from_u64(0);
    let mut call =
        || tensor::with_workers_awake(|| iwae_log_likelihood(model, &x, probe_k, IWAE_ROWS, &mut rng));
    call();
    let start = Instant::now();
    call();
    let probe = start.elapsed().as_secs_f64();
    let scale = config.forward_macs(images, k) as f64 / config.forward_macs(1, probe_k).max(1) as f64;
    probe * scale
}

/// A duration for people: seconds, minutes, hours, days or years, to two or three figures.
pub fn human_seconds(s: f64) -> String {
    let units = [(365.25 * 86400.0, "years"), (86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")];
    match units.iter().find(|(u, _)| s >= 2.0 * u) {
        Some((u, name)) => format!("{:.1} {name}", s / u),
        None => format!("{s:.1} seconds"),
    }
}

/// Refuses an importance-weighted evaluation that would take longer than
/// [`IWAE_LONGEST_SECONDS`] on this machine, naming `flag`; gives the estimate otherwise.
pub fn check_iwae_time(
    model: &Vae<f32>,
    config: &TrainConfig,
    images: usize,
    k: usize,
    flag: &str,
) -> Result<f64> {
    let secs = iwae_seconds(model, config, images, k);
    if secs > IWAE_LONGEST_SECONDS {
        return Err(VaeError::Config(format!(
            "{flag} {k} would take about {} on this machine for {images} test images; choose a smaller k",
            human_seconds(secs)
        )));
    }
    Ok(secs)
}

/// Runs training as `opts` asks, reporting each epoch's line through `log`; returns the
/// summary that is also written to `summary.json`. The data decides the model's input
/// size (`opts.train.model.input` is replaced by the pixels per image of the data, and a
/// convolutional model's side by the images' height).
pub fn run(opts: &RunOptions, mut log: impl FnMut(&str)) -> Result<Value> {
    let mnist = Mnist::load(&opts.data_dir)?;
    let (mut train, test) = (mnist.train, mnist.test);
    let mut opts = opts.clone();
    opts.train.model.fit_images(train.dim(), train.image_shape().0);
    let opts = &opts;
    opts.train.validate()?;
    if let Some(n) = opts.train.train_limit {
        train.truncate(n);
    }
    opts.train.check_memory(train.len(), opts.iwae_k, &crate::io::MemoryLimit::current())?;
    crate::io::prepare_out_dir(&opts.out_dir)?;
    let _lock = lock_out_dir(&opts.out_dir)?;
    let removed = remove_left_overs(&opts.out_dir);
    if removed > 0 {
        log(&format!("removed {removed} temporary file(s) left by an interrupted write"));
    }
    let mut trainer = start(opts, &mut log)?;
    // Every epoch takes one optimizer step per batch; a count that says otherwise would
    // change Adam's bias correction (or overflow it) silently.
    let per_epoch = train.len().div_ceil(opts.train.batch_size.max(1)) as u64;
    if Some(trainer.optimizer.steps) != (trainer.epoch as u64).checked_mul(per_epoch) {
        return Err(VaeError::Checkpoint {
            msg: format!(
                "says {} optimizer steps after {} epochs, where an epoch of {} images in batches of {} is {per_epoch} steps: the file was edited or damaged",
                trainer.optimizer.steps,
                trainer.epoch,
                train.len(),
                opts.train.batch_size
            ),
            path: opts.resume.clone().unwrap_or_else(|| opts.out_dir.join(CHECKPOINT)),
        });
    }
    let iwae_estimate = match opts.iwae_k {
        0 => 0.0,
        k => check_iwae_time(&trainer.model, &opts.train, test.len(), k, "--iwae-k")?,
    };
    if opts.force {
        // Starting over: no file of the previous run stays beside this one's.
        let removed = remove_outputs(&opts.out_dir)?;
        if removed > 0 {
            log(&format!("removed {removed} file(s) of the previous run (--force)"));
        }
    }
    if trainer.epoch > 0 {
        // A run stopped between its checkpoint and the files that follow it left them
        // behind; they are written again from the checkpoint before anything else. After
        // --force, the checkpoint resumed from (which may have been the directory's own)
        // is the run's state and is written too.
        if opts.force {
            checkpoint::save(&opts.out_dir.join(CHECKPOINT), &trainer)?;
        }
        write_after_checkpoint(opts, &trainer, true)?;
    }
    if trainer.epoch == 0 && opts.train.model.init == Init::Glorot {
        trainer.model.set_output_bias_to_logit(&train.mean_image());
    }
    trainer.set_detect_anomaly(opts.detect_anomaly);
    let ckpt = opts.out_dir.join(CHECKPOINT);
    while trainer.epoch < opts.train.epochs {
        let pb = bar(train.len(), opts.progress, &format!("epoch {}", trainer.epoch + 1));
        let m = trainer.run_epoch(&train, &test, |done| pb.set_position(done as u64))?;
        pb.finish_and_clear();
        log(&format!(
            "epoch {} train_neg_elbo {:.4} test_neg_elbo {:.4} seconds {:.2}",
            m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds
        ));
        // Nothing non-finite goes into a checkpoint: the last good one stays in place.
        if !(m.train_neg_elbo.is_finite() && m.test_neg_elbo.is_finite()) {
            return Err(VaeError::NonFinite(format!(
                "epoch {} gave a non-finite negative ELBO (train {}, test {}); stopped, and {}",
                m.epoch,
                m.train_neg_elbo,
                m.test_neg_elbo,
                still_holds(&ckpt, m.epoch - 1)
            )));
        }
        checkpoint::save(&ckpt, &trainer).map_err(|e| match e {
            VaeError::NonFinite(what) => VaeError::NonFinite(format!(
                "after epoch {}, {what} (a learning rate or weight decay too large for this model?); \
                 stopped, and {}",
                m.epoch,
                still_holds(&ckpt, m.epoch - 1)
            )),
            e => e,
        })?;
        write_after_checkpoint(opts, &trainer, false)?;
    }
    write_images(&opts.out_dir, &trainer, &test)?;
    let layers = trainer.model.active_units(&test.intensities(&(0..test.len()).collect::<Vec<_>>()));
    let counts: Vec<String> = layers.iter().map(|(v, a)| format!("{a} of {}", v.len())).collect();
    log(&format!("active_units {}", counts.join(", ")));
    let train_seconds: f64 = trainer.history.iter().map(|m| m.epoch_seconds).sum();
    log(&format!("trained {} epochs in {train_seconds:.1} seconds", trainer.epoch));
    let mut summary = json!({
        "active_units": layers[0].1,
        "latent_variances": layers[0].0,
        "active_units_per_layer": layers.iter().map(|l| l.1).collect::<Vec<_>>(),
        "latent_variances_per_layer": layers.iter().map(|l| &l.0).collect::<Vec<_>>(),
        "config": opts.train.to_json(),
        "epochs_completed": trainer.epoch,
        "parameters": trainer.model.params.numel(),
        "test_neg_elbo": trainer.history.last().map(|m| m.test_neg_elbo),
        "train_neg_elbo": trainer.history.last().map(|m| m.train_neg_elbo),
        "total_train_seconds": train_seconds,
    });
    if opts.iwae_k > 0 {
        log(&format!(
            "importance-weighted bound, k = {}, on {} test images: about {}",
            opts.iwae_k,
            test.len(),
            human_seconds(iwae_estimate)
        ));
        let start = Instant::now();
        let nll = iwae_nll(&trainer, &test, opts.iwae_k, opts.progress);
        let secs = start.elapsed().as_secs_f64();
        if !nll.is_finite() {
            return Err(VaeError::NonFinite(format!(
                "the importance-weighted bound (k = {}) is not finite ({nll}); summary not written",
                opts.iwae_k
            )));
        }
        log(&format!("test_iwae_nll {nll:.4} k {} seconds {secs:.1}", opts.iwae_k));
        summary["test_iwae_nll"] = json!(nll);
        summary["iwae_k"] = json!(opts.iwae_k);
        summary["iwae_seconds"] = json!(secs);
    }
    let text = serde_json::to_string_pretty(&summary).expect("JSON");
    atomic_write(&opts.out_dir.join(SUMMARY), text.as_bytes())?;
    Ok(summary)
}
