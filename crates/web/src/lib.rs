//! The engine in a web page. Three types, exported to JavaScript with wasm-bindgen, are
//! everything `web/index.html` calls:
//!
//! - [`Digits`]: labelled images from the bytes of an IDX image file and label file (raw or
//!   gzipped), as MNIST ships them.
//! - [`Explorer`]: a trained model with a 2-D latent space, from the bytes of a checkpoint
//!   written by `mnist_vae --latent 2`: decodes points of the plane and encodes images.
//! - [`TabTrainer`]: a small 2-D-latent VAE trained in the tab, a few steps per call, so the
//!   page stays responsive and can stop it between calls.
//!
//! Every function is also callable from native Rust, where the tests check it (the
//! JavaScript-facing methods only turn the error strings of their native twins into
//! exceptions). On wasm32 rayon runs on the calling thread and the kernels take their
//! portable path, so the page computes exactly what the native build computes with its
//! portable kernels, to float tolerance.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;

use rand::rngs::StdRng;
use tensor::Tensor;
use vae::checkpoint;
use vae::config::{TrainConfig, VaeConfig};
use vae::data::{decode_idx, Dataset};
use vae::model::Vae;
use vae::train::{stream_rng, Stream, Trainer};
use wasm_bindgen::prelude::*;

/// Latent dimensions of every model the page shows.
pub const LATENT: usize = 2;

/// Turns a native error into a JavaScript exception carrying its message.
fn js(message: String) -> JsError {
    JsError::new(&message)
}

/// Labelled images, each a row of pixels scaled to [0, 1].
#[wasm_bindgen]
pub struct Digits {
    data: Dataset,
}

impl Digits {
    /// Parses an IDX image file and label file (each raw or gzipped: a gzip stream is told
    /// by its magic bytes); `name` names the pair in errors.
    pub fn parse(name: &str, images: &[u8], labels: &[u8]) -> Result<Digits, String> {
        let idx = |what: &str, bytes: &[u8]| {
            decode_idx(bytes, bytes.starts_with(&[0x1f, 0x8b]))
                .map_err(|e| format!("{name}: the {what} file is not readable: {e}"))
        };
        let images = idx("image", images)?;
        let labels = idx("label", labels)?;
        let data = Dataset::from_idx((Path::new("images"), images), (Path::new("labels"), labels))
            .map_err(|e| format!("{name}: {e}"))?;
        if data.is_empty() {
            return Err(format!("{name}: the files hold no images"));
        }
        Ok(Digits { data })
    }
}

#[wasm_bindgen]
impl Digits {
    /// [`Digits::parse`] for JavaScript.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, images: &[u8], labels: &[u8]) -> Result<Digits, JsError> {
        Self::parse(name, images, labels).map_err(js)
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.data.len()
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.data.dim()
    }

    /// Rows (and columns) of an image, for square images; rows otherwise.
    pub fn side(&self) -> usize {
        self.data.image_shape().0
    }

    /// Every image's label, in order.
    pub fn labels(&self) -> Vec<u8> {
        (0..self.data.len()).map(|i| self.data.label(i)).collect()
    }

    /// The first `n` images' pixels in [0, 1], `[n, dim]` row-major (all of them when `n`
    /// is larger than the count).
    pub fn pixels(&self, n: usize) -> Vec<f32> {
        let n = n.min(self.data.len());
        self.data.intensities::<f32>(&(0..n).collect::<Vec<_>>()).to_vec()
    }
}

/// Decoder means (pixel probabilities for a Bernoulli decoder) for `points`, two numbers a
/// point, `[n, input]` row-major.
fn decode_points(model: &Vae<f32>, points: &[f32]) -> Result<Vec<f32>, String> {
    if !points.len().is_multiple_of(LATENT) {
        return Err(format!("{} numbers are not a list of 2-D points", points.len()));
    }
    if let Some(v) = points.iter().find(|v| !v.is_finite()) {
        return Err(format!("a point's coordinate is {v}"));
    }
    let z = Tensor::from_vec(points.to_vec(), &[points.len() / LATENT, LATENT]);
    Ok(model.decode_mean(&z).to_vec())
}

/// The encoder's means for `pixels` (`[n, input]` row-major, in [0, 1]), two numbers an
/// image.
fn encode_images(model: &Vae<f32>, pixels: &[f32]) -> Result<Vec<f32>, String> {
    let input = model.config.input;
    if !pixels.len().is_multiple_of(input) {
        return Err(format!("{} pixels are not a list of {input}-pixel images", pixels.len()));
    }
    if let Some(v) = pixels.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(format!("a pixel is {v}, outside [0, 1]"));
    }
    let x = Tensor::from_vec(pixels.to_vec(), &[pixels.len() / input, input]);
    Ok(model.encode_mean(&x).to_vec())
}

/// A trained model with a 2-D latent space.
#[wasm_bindgen]
pub struct Explorer {
    model: Vae<f32>,
}

impl Explorer {
    /// Loads the bytes of a checkpoint written by `mnist_vae --latent 2`, with every check
    /// `mnist_vae` makes on resuming (format, checksum, names, shapes, finite values);
    /// `name` names it in errors. A checkpoint of another latent size, or with a second
    /// stochastic layer, is refused with its size.
    pub fn load(name: &str, bytes: &[u8]) -> Result<Explorer, String> {
        let path = Path::new(name);
        let (config, _) = checkpoint::read_meta(path, bytes).map_err(|e| e.to_string())?;
        if config.model.latent != LATENT || !config.model.upper.is_empty() {
            let sizes = std::iter::once(config.model.latent)
                .chain(config.model.upper.iter().map(|l| l.latent))
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" + ");
            return Err(format!(
                "{name}: the model's latent space has {sizes} dimensions; this page shows 2 (train one with `mnist_vae --latent 2`)"
            ));
        }
        let (trainer, _) = checkpoint::from_bytes(path, bytes, &config).map_err(|e| e.to_string())?;
        Ok(Explorer { model: trainer.model })
    }

    /// [`Explorer::decode`] with a native error.
    pub fn decode_native(&self, points: &[f32]) -> Result<Vec<f32>, String> {
        decode_points(&self.model, points)
    }

    /// [`Explorer::encode`] with a native error.
    pub fn encode_native(&self, pixels: &[f32]) -> Result<Vec<f32>, String> {
        encode_images(&self.model, pixels)
    }
}

#[wasm_bindgen]
impl Explorer {
    /// [`Explorer::load`] for JavaScript.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, bytes: &[u8]) -> Result<Explorer, JsError> {
        Self::load(name, bytes).map_err(js)
    }

    /// Pixels per image.
    pub fn input(&self) -> usize {
        self.model.config.input
    }

    /// Decoder means for `points` (`[x0, y0, x1, y1, …]`), `[n, input]` row-major.
    pub fn decode(&self, points: &[f32]) -> Result<Vec<f32>, JsError> {
        self.decode_native(points).map_err(js)
    }

    /// The encoder's means for `pixels` (`[n, input]` in [0, 1]), `[x0, y0, x1, y1, …]`.
    pub fn encode(&self, pixels: &[f32]) -> Result<Vec<f32>, JsError> {
        self.encode_native(pixels).map_err(js)
    }
}

/// A 2-D-latent VAE trained in the tab on [`Digits`]: the library's own [`Trainer`] and
/// random streams, stepped a few batches per call.
#[wasm_bindgen]
pub struct TabTrainer {
    trainer: Trainer,
    data: Dataset,
    /// The current epoch's shuffled batches, the next one to run, and the epoch's stream.
    batches: Vec<Vec<usize>>,
    next: usize,
    rng: StdRng,
    /// Summed negative ELBO and images of the current epoch so far.
    total: f64,
    seen: usize,
    /// Mean negative ELBO per image of each finished epoch.
    losses: Vec<f64>,
}

impl TabTrainer {
    /// A fresh MLP VAE `input-hidden-2-hidden-input` (ReLU, Bernoulli pixels, Adam at
    /// `lr`) over `digits`, drawing batches of `batch_size` from the streams of `seed` (a
    /// `u32`, which JavaScript passes as a plain number).
    pub fn create(
        digits: &Digits,
        hidden: usize,
        batch_size: usize,
        lr: f64,
        seed: u32,
    ) -> Result<Self, String> {
        let seed = u64::from(seed);
        let config = TrainConfig {
            model: VaeConfig {
                input: digits.data.dim(),
                hidden: vec![hidden],
                latent: LATENT,
                ..VaeConfig::default()
            },
            batch_size,
            seed,
            optimizer: vae::config::OptimizerConfig { lr, ..Default::default() },
            ..TrainConfig::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        let mut trainer = TabTrainer {
            trainer: Trainer::new(config),
            data: digits.data.clone(),
            batches: Vec::new(),
            next: 0,
            rng: stream_rng(seed, 0, Stream::Train),
            total: 0.0,
            seen: 0,
            losses: Vec::new(),
        };
        trainer.start_epoch();
        Ok(trainer)
    }

    /// Shuffles the next epoch's batches from its own stream, as [`Trainer::train_epoch`]
    /// does.
    fn start_epoch(&mut self) {
        let t = &mut self.trainer;
        t.optimizer.config.lr = t.config.lr_at(t.epoch);
        self.rng = stream_rng(t.config.seed, t.epoch + 1, Stream::Train);
        self.batches = self.data.batches(t.config.batch_size, Some(&mut self.rng));
        self.next = 0;
        self.total = 0.0;
        self.seen = 0;
    }

    /// [`TabTrainer::train`] with a native error.
    pub fn train_native(&mut self, steps: usize) -> Result<bool, String> {
        for _ in 0..steps {
            let idx = &self.batches[self.next];
            let x = self.data.batch::<f32, _>(idx, None::<&mut StdRng>);
            self.total += self.trainer.step(x, &mut self.rng).map_err(|e| e.to_string())?;
            self.seen += idx.len();
            self.next += 1;
            if self.next == self.batches.len() {
                self.losses.push(self.total / self.seen as f64);
                self.trainer.epoch += 1;
                self.start_epoch();
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[wasm_bindgen]
impl TabTrainer {
    /// [`TabTrainer::create`] for JavaScript.
    #[wasm_bindgen(constructor)]
    pub fn new(
        digits: &Digits,
        hidden: usize,
        batch_size: usize,
        lr: f64,
        seed: u32,
    ) -> Result<TabTrainer, JsError> {
        Self::create(digits, hidden, batch_size, lr, seed).map_err(js)
    }

    /// Runs up to `steps` optimizer steps, stopping early at the end of an epoch; says
    /// whether an epoch ended.
    pub fn train(&mut self, steps: usize) -> Result<bool, JsError> {
        self.train_native(steps).map_err(js)
    }

    /// Epochs finished.
    pub fn epoch(&self) -> usize {
        self.trainer.epoch
    }

    /// Fraction of the current epoch done.
    pub fn progress(&self) -> f64 {
        self.next as f64 / self.batches.len() as f64
    }

    /// Mean negative ELBO per image of the current epoch so far (NaN before its first step).
    pub fn running_loss(&self) -> f64 {
        if self.seen == 0 {
            f64::NAN
        } else {
            self.total / self.seen as f64
        }
    }

    /// Mean negative ELBO per image of each finished epoch, in order.
    pub fn losses(&self) -> Vec<f64> {
        self.losses.clone()
    }

    /// Decoder means for `points`, as [`Explorer::decode`].
    pub fn decode(&self, points: &[f32]) -> Result<Vec<f32>, JsError> {
        decode_points(&self.trainer.model, points).map_err(js)
    }

    /// The encoder's means for `pixels`, as [`Explorer::encode`].
    pub fn encode(&self, pixels: &[f32]) -> Result<Vec<f32>, JsError> {
        encode_images(&self.trainer.model, pixels).map_err(js)
    }
}
