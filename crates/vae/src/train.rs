//! Training and evaluation: the one training step every trainer in the crate uses, one
//! epoch, the test-set ELBO, and the reproducible random streams that make a resumed run
//! bit-identical. (The run's configuration lives in [`crate::config`].)

use std::time::Instant;

use autograd::{Anomaly, Graph, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::{Element, Tensor};

pub use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::elbo::{elbo, ElboConfig, Objective};
use crate::error::{Result, VaeError};
use crate::model::Vae;
use crate::nn::{ParamSet, TensorList};
use crate::optim::Optimizer;

/// Anything whose parameters a training step updates.
pub trait Parameters<T: Element> {
    /// The parameters, in a fixed order.
    fn params(&self) -> &ParamSet<T>;
    /// The same, mutably (for the optimizer).
    fn params_mut(&mut self) -> &mut ParamSet<T>;
}

impl<T: Element> Parameters<T> for ParamSet<T> {
    fn params(&self) -> &ParamSet<T> {
        self
    }
    fn params_mut(&mut self) -> &mut ParamSet<T> {
        self
    }
}

impl<T: Element> Parameters<T> for Vae<T> {
    fn params(&self) -> &ParamSet<T> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamSet<T> {
        &mut self.params
    }
}

/// Why [`train_step`] left the parameters alone: a non-finite loss or reported value, or
/// (in anomaly-detection mode) a non-finite gradient.
#[derive(Clone, Debug)]
pub struct StepFailure {
    /// The loss's value.
    pub loss: f64,
    /// The value the step reports (the negative ELBO, say).
    pub reported: f64,
    /// In anomaly mode: the first op that produced a non-finite value.
    pub anomaly: Option<Anomaly>,
    /// In anomaly mode: the first parameter whose gradient is not finite.
    pub bad_param: Option<String>,
    /// Whether anomaly detection was on.
    pub detecting: bool,
    /// Updates the optimizer had applied before this step.
    pub updates: u64,
}

impl StepFailure {
    /// One line saying what went wrong `at` (for example "epoch 2 step 17").
    pub fn message(&self, at: &str) -> String {
        if self.detecting {
            format!(
                "non-finite {} at {at}; anomaly: {}; first parameter with a non-finite gradient: {}",
                if self.loss.is_finite() && self.reported.is_finite() { "gradient" } else { "loss" },
                self.anomaly.map_or("no op produced a non-finite value".to_string(), |a| a.to_string()),
                self.bad_param.as_deref().unwrap_or("none")
            )
        } else {
            let value = if self.loss.is_finite() { self.reported } else { self.loss };
            // Before any update the learning rate cannot be the cause.
            let hint = if self.updates == 0 {
                "before any update, so the data or the objective is the cause, not the learning rate"
            } else {
                "a lower learning rate may help"
            };
            // Worded for every trainer in the crates, not one program's flags.
            format!(
                "non-finite loss ({value}) at {at}; training stopped ({hint}; anomaly detection, \
                 mnist_vae's --detect-anomaly or Graph::set_detect_anomaly, names the op)"
            )
        }
    }
}

/// One optimizer step, the same for every model in the crate: bind the parameters to
/// `graph`, let `f` build the loss (and a value to report) from the model and the bound
/// parameters, run backward, take every parameter's gradient (zeros for one that got none),
/// reset the tape, and update with `optimizer`. Returns the loss and the reported value; a
/// non-finite one (or, in anomaly mode, a non-finite gradient) leaves the parameters as
/// they were and returns why.
pub fn train_step<T, M, F>(
    graph: &mut Graph<T>,
    model: &mut M,
    optimizer: &mut Optimizer<T>,
    f: F,
) -> std::result::Result<(f64, f64), StepFailure>
where
    T: Element,
    M: Parameters<T>,
    F: for<'g> FnOnce(&'g Graph<T>, &M, &[Var<'g, T>]) -> (Var<'g, T>, f64),
{
    let detecting = graph.anomaly_detection();
    let (loss, reported, grads, anomaly) = {
        let g = &*graph;
        let vars = model.params().bind(g);
        let (loss, reported) = f(g, model, &vars);
        let value = loss.value().item().to_f64_lossless();
        let mut store = loss.backward();
        let anomaly = g.forward_anomaly().or(store.anomaly());
        let grads: TensorList<T> =
            vars.iter().map(|&v| store.take(v).unwrap_or_else(|| Tensor::zeros(&v.shape()))).collect();
        g.recycle(store);
        (value, reported, grads, anomaly)
    };
    // Drop the tape first, so the parameters' storage is no longer shared and the update
    // happens in place.
    graph.reset();
    let bad_param = if detecting {
        let names = model.params().names();
        grads.iter().position(|g| g.to_vec().iter().any(|v| !v.is_finite())).map(|i| names[i].clone())
    } else {
        None
    };
    if !loss.is_finite() || !reported.is_finite() || bad_param.is_some() {
        return Err(StepFailure { loss, reported, anomaly, bad_param, detecting, updates: optimizer.steps });
    }
    optimizer.step(model.params_mut(), &grads).expect("the gradients of the model's own parameters");
    Ok((loss, reported))
}

/// The random streams of a run. Each is seeded from the run's seed, the epoch and its
/// purpose alone, so a run resumed at an epoch boundary draws exactly what an uninterrupted
/// run would have drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Parameter initialization.
    Init,
    /// Shuffling, binarization and noise while training an epoch.
    Train,
    /// Noise and binarization while evaluating after an epoch.
    Eval,
    /// Everything after training (images, the IWAE bound).
    Final,
}

/// The generator of `stream` for `epoch` of a run seeded with `seed`.
pub fn stream_rng(seed: u64, epoch: usize, stream: Stream) -> StdRng {
    // SplitMix64 finalizer over the three inputs: distinct, well-mixed seeds.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((epoch as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(stream as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// One epoch's results.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// The epoch's number, from 1.
    pub epoch: usize,
    /// Negative ELBO per training image, averaged over the epoch's steps (nats).
    pub train_neg_elbo: f64,
    /// Negative ELBO per test image after the epoch (nats).
    pub test_neg_elbo: f64,
    /// Wall-clock seconds of the epoch's training.
    pub epoch_seconds: f64,
}

/// A model, its optimizer and its progress.
pub struct Trainer {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The model being trained.
    pub model: Vae<f32>,
    /// Its optimizer.
    pub optimizer: Optimizer<f32>,
    /// Epochs completed.
    pub epoch: usize,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
    graph: Graph<f32>,
}

impl Trainer {
    /// A fresh model and optimizer for `config` (which must be valid).
    pub fn new(config: TrainConfig) -> Self {
        let mut rng = stream_rng(config.seed, 0, Stream::Init);
        let model = Vae::new(config.model.clone(), &mut rng);
        let optimizer = Optimizer::new(config.optimizer, &model.params);
        Self::from_parts(config, model, optimizer, 0, Vec::new())
    }

    /// A trainer that continues from saved state.
    pub fn from_parts(
        config: TrainConfig,
        model: Vae<f32>,
        optimizer: Optimizer<f32>,
        epoch: usize,
        history: Vec<EpochMetrics>,
    ) -> Self {
        Trainer { config, model, optimizer, epoch, history, graph: Graph::new() }
    }

    /// Checks every op's output and gradient for NaN and infinity, so that a non-finite loss
    /// is reported with the first op and parameter that went non-finite (slower).
    pub fn set_detect_anomaly(&mut self, on: bool) {
        self.graph.set_detect_anomaly(on);
    }

    /// One optimizer step on images `x` (`[batch, input]`); returns the batch's summed
    /// negative ELBO. A non-finite loss (or, in anomaly mode, gradient) is an error naming
    /// the step, and the parameters are then left as they were.
    pub fn step(&mut self, x: Tensor<f32>, rng: &mut StdRng) -> Result<f64> {
        // Run the whole step on a rayon worker with the others awake: its kernels then fork
        // to running workers directly, instead of each kernel handing off from this thread
        // and waking a worker.
        tensor::with_workers_awake(|| self.step_on_pool(x, rng))
    }

    fn step_on_pool(&mut self, x: Tensor<f32>, rng: &mut StdRng) -> Result<f64> {
        let config = self.config.elbo;
        let result = train_step(&mut self.graph, &mut self.model, &mut self.optimizer, |g, vae, vars| {
            let bound = vae.attach(vars).expect("the variables of the model's own parameters");
            let terms = elbo(&bound, g.constant(x), &config, rng);
            (terms.loss, terms.neg_elbo())
        });
        result.map(|(_, neg_elbo)| neg_elbo).map_err(|failure| {
            let at = format!("epoch {} step {}", self.epoch + 1, self.optimizer.steps + 1);
            VaeError::NonFinite(failure.message(&at))
        })
    }

    /// Trains one epoch over `data` (shuffled by the epoch's stream), calling `progress`
    /// with the number of images done after each step; returns the mean negative ELBO per
    /// image over the epoch.
    pub fn train_epoch(&mut self, data: &Dataset, mut progress: impl FnMut(usize)) -> Result<f64> {
        // The schedule's rate for this epoch (the configured rate when there is none), a
        // function of the epoch alone, so a resumed run continues exactly.
        self.optimizer.config.lr = self.config.lr_at(self.epoch);
        let mut rng = stream_rng(self.config.seed, self.epoch + 1, Stream::Train);
        let batches = data.batches(self.config.batch_size, Some(&mut rng));
        let (mut total, mut seen) = (0.0, 0);
        for idx in &batches {
            let x = data.batch::<f32, _>(idx, self.config.binarize.then_some(&mut rng));
            total += self.step(x, &mut rng)?;
            seen += idx.len();
            progress(seen);
        }
        Ok(total / seen.max(1) as f64)
    }

    /// Trains one epoch and evaluates on `test`; records and returns the metrics.
    pub fn run_epoch(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        progress: impl FnMut(usize),
    ) -> Result<EpochMetrics> {
        let start = Instant::now();
        let train_neg_elbo = self.train_epoch(train, progress)?;
        let epoch_seconds = start.elapsed().as_secs_f64();
        self.epoch += 1;
        let test_neg_elbo = evaluate(
            &self.model,
            &self.config,
            test,
            &mut stream_rng(self.config.seed, self.epoch, Stream::Eval),
        );
        let m = EpochMetrics { epoch: self.epoch, train_neg_elbo, test_neg_elbo, epoch_seconds };
        self.history.push(m.clone());
        Ok(m)
    }
}

/// Images per evaluation batch (no tape is kept, so larger batches only cost activations).
pub const EVAL_BATCH: usize = 1000;

/// The negative ELBO per image of `data` (one sample of z per image, β = 1; the KL in
/// closed form for one stochastic layer, as a mean of log-weights for more), in order,
/// without recording a tape.
pub fn evaluate(model: &Vae<f32>, config: &TrainConfig, data: &Dataset, rng: &mut StdRng) -> f64 {
    let batches = data.batches::<StdRng>(EVAL_BATCH, None);
    let objective = if model.config.upper.is_empty() { Objective::Elbo } else { Objective::ElboMc };
    let cfg = ElboConfig { objective, ..ElboConfig::default() };
    // On a rayon worker with the others awake, like the training step.
    let total: f64 = tensor::with_workers_awake(|| {
        let mut total = 0.0;
        for idx in &batches {
            let x = data.batch::<f32, _>(idx, config.binarize.then_some(&mut *rng));
            let g = Graph::no_grad();
            total += elbo(&model.bind(&g), g.constant(x), &cfg, rng).neg_elbo();
        }
        total
    });
    total / data.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VaeConfig;

    fn small() -> Trainer {
        Trainer::new(TrainConfig {
            model: VaeConfig { input: 6, hidden: vec![4], latent: 2, ..VaeConfig::default() },
            batch_size: 2,
            ..TrainConfig::default()
        })
    }

    #[test]
    fn a_nan_stops_training_and_names_the_step() {
        let mut t = small();
        let mut rng = stream_rng(1, 1, Stream::Train);
        let good = Tensor::from_vec(vec![0.5; 12], &[2, 6]);
        t.step(good.clone(), &mut rng).unwrap();
        let before: Vec<Vec<f32>> = t.model.params.tensors().iter().map(Tensor::to_vec).collect();
        let mut bad = vec![0.5; 12];
        bad[3] = f32::NAN;
        let err = t.step(Tensor::from_vec(bad.clone(), &[2, 6]), &mut rng).unwrap_err().to_string();
        assert!(err.starts_with("non-finite loss (NaN) at epoch 1 step 2;"), "{err}");
        let after: Vec<Vec<f32>> = t.model.params.tensors().iter().map(Tensor::to_vec).collect();
        assert_eq!(before, after, "a failed step must not touch the parameters");

        t.set_detect_anomaly(true);
        let err = t.step(Tensor::from_vec(bad, &[2, 6]), &mut rng).unwrap_err().to_string();
        assert!(
            err.contains("anomaly: leaf node 10 (an input or parameter) holds a non-finite value"),
            "{err}"
        );
        assert!(err.contains("first parameter with a non-finite gradient: fc1.weight"), "{err}");
        t.step(good, &mut rng).unwrap();
    }

    #[test]
    fn extreme_log_variances_stay_finite() {
        use crate::elbo::{kl_standard_normal, log_normal_diag};
        let g = Graph::<f32>::new();
        let mu = g.param(Tensor::from_vec(vec![0.0, 3.0, -3.0, 1.0], &[2, 2]));
        let logvar = g.param(Tensor::from_vec(vec![50.0, -50.0, -50.0, 50.0], &[2, 2]));
        let eps = g.constant(Tensor::from_vec(vec![0.3, -1.0, 2.0, 0.1], &[2, 2]));
        let z = Vae::reparameterize(mu, logvar, eps);
        let total = kl_standard_normal(mu, logvar).sum() + log_normal_diag(z, mu, logvar).sum();
        assert!(total.value().item().is_finite());
        let grads = total.backward();
        for v in [mu, logvar] {
            assert!(grads.get(v).unwrap().to_vec().iter().all(|x| x.is_finite()));
        }
    }
}
