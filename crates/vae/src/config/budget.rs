//! What a configuration costs, from one list of the model's matrix products: the
//! multiply-adds of a step and of an evaluation, the parameter count, and the memory a run
//! needs (checked before anything is allocated).

use super::{ConvNet, TrainConfig};
use crate::error::Result;
use crate::io::MemoryLimit;
use crate::model::{architecture, LayerKind, Role};

impl TrainConfig {
    /// Multiply-adds of the matrix products of one training step at a full batch: each layer's
    /// forward product, and in backward its weight gradient and (but for the first layer,
    /// whose input is data) its input gradient. Encoder layers see `batch` rows, decoder
    /// layers `batch · samples` (every objective decodes its samples as one batch, but the
    /// score-function estimators, which decode each in turn: the same count).
    pub fn step_macs(&self) -> u128 {
        let products = self.products(self.batch_size as u128, self.elbo.samples as u128);
        products.iter().map(|p| p.macs() * if p.from_data { 2 } else { 3 }).sum()
    }

    /// Multiply-adds of the forward matrix products for `images` images with `samples`
    /// draws of z each (the k = `samples` evaluation's count: one encoder pass per image,
    /// one decoder pass per draw).
    pub fn forward_macs(&self, images: usize, samples: usize) -> u128 {
        self.products(images as u128, samples as u128).iter().map(Product::macs).sum()
    }

    /// Parameters of the model: every product's weights and biases (a convolution's kernel
    /// is its product's `in·k·k × out` weight, its bias one per output channel). Exact in
    /// `u128`.
    pub fn parameters(&self) -> u128 {
        self.products(1, 1).iter().map(|p| p.inputs * p.outputs + p.outputs).sum()
    }

    /// Every forward product of the model for `b` images and `k` draws of z per image, one
    /// per layer of its [`architecture`]: what the step's multiply-adds, the parameter count
    /// and the memory estimate are read from.
    fn products(&self, b: u128, k: u128) -> Vec<Product> {
        let layers = architecture(&self.model);
        // The first layer reads the data; so do both heads when they are the first.
        let reads_data = |i: usize, role: Role| i == 0 || (role == Role::Scale && layers[0].role == Role::Mu);
        let k2 = (ConvNet::KERNEL * ConvNet::KERNEL) as u128;
        let products = layers.iter().enumerate().map(|(i, layer)| {
            let images = if layer.role.per_image() { b } else { b * k };
            let from_data = reads_data(i, layer.role);
            match layer.kind {
                LayerKind::Dense { inputs, outputs } => {
                    let (inputs, outputs) = (inputs as u128, outputs as u128);
                    Product { inputs, outputs, rows: images, from_data, held: images * (inputs + outputs) }
                }
                LayerKind::Conv { inputs, outputs, side_in, side_out, transpose } => {
                    let (inputs, outputs) = (inputs as u128, outputs as u128);
                    let (pixels_in, pixels_out) = ((side_in as u128).pow(2), (side_out as u128).pow(2));
                    // One product over the smaller map's pixels, `in·k·k` by `out`; its column
                    // matrix holds the larger map's channels times k·k per such pixel. The
                    // forward keeps the input map, the column matrix and the output map.
                    let (pixels, columns) =
                        if transpose { (pixels_in, outputs) } else { (pixels_out, inputs) };
                    Product {
                        inputs: inputs * k2,
                        outputs,
                        rows: images * pixels,
                        from_data,
                        held: images * (inputs * pixels_in + columns * k2 * pixels + outputs * pixels_out),
                    }
                }
            }
        });
        products.collect()
    }

    /// Refuses, before anything is allocated, a configuration whose parameters, optimizer
    /// state and activations would not fit in `limit`, naming the setting (as its
    /// command-line flag) that asks for the most and the bytes it would need.
    /// `train_images` caps the batch; `iwae_k` is the samples of the importance-weighted
    /// evaluation after training (0 for none).
    pub fn check_memory(&self, train_images: usize, iwae_k: usize, limit: &MemoryLimit) -> Result<()> {
        let need = self.bytes_needed(train_images, iwae_k);
        if need <= limit.bytes as u128 {
            return Ok(());
        }
        let m = &self.model;
        let with = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = self.clone();
            f(&mut c);
            c.bytes_needed(train_images, iwae_k)
        };
        let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let suspects = [
            ("--hidden", list(&m.hidden), with(&|c| c.model.hidden.iter_mut().for_each(|h| *h = 1))),
            (
                "--decoder-hidden",
                list(&m.decoder_layers()),
                with(&|c| c.model.decoder_hidden = Some(vec![1; c.model.decoder_layers().len()])),
            ),
            ("--latent", m.latent.to_string(), with(&|c| c.model.latent = 1)),
            ("--batch-size", self.batch_size.to_string(), with(&|c| c.batch_size = 1)),
            ("--samples", self.elbo.samples.to_string(), with(&|c| c.elbo.samples = 1)),
            (
                "--conv-channels",
                m.conv.as_ref().map_or(String::new(), |n| list(&n.channels)),
                with(&|c| c.model.conv.iter_mut().for_each(|n| n.channels.iter_mut().for_each(|h| *h = 1))),
            ),
            (
                "--upper-hidden",
                m.upper.first().map_or(String::new(), |u| list(&u.hidden)),
                with(&|c| c.model.upper.iter_mut().for_each(|u| u.hidden.iter_mut().for_each(|h| *h = 1))),
            ),
            (
                "--upper-latent",
                m.upper.first().map_or(String::new(), |u| u.latent.to_string()),
                with(&|c| c.model.upper.iter_mut().for_each(|u| u.latent = 1)),
            ),
        ];
        limit.require(need, &suspects)
    }

    /// A generous estimate of the bytes a run of this configuration allocates: parameters
    /// with their gradients and optimizer state (and a checkpoint's copy of them), the
    /// activations of a training step (each product's input and output with their
    /// gradients and temporaries, a convolution's column matrix besides), and those of the
    /// larger evaluation (the test bound's batch, or the IWAE bound's rows for `iwae_k`
    /// samples, if any), and the training images' bytes. Exact in `u128`, so no size
    /// overflows.
    fn bytes_needed(&self, train_images: usize, iwae_k: usize) -> u128 {
        let activations =
            |b: usize, k: usize| -> u128 { self.products(b as u128, k as u128).iter().map(|p| p.held).sum() };
        let batch = self.batch_size.min(train_images.max(1));
        let train = 4 * activations(batch, self.elbo.samples);
        let iwae = match iwae_k {
            0 => 0,
            k => activations(crate::run::iwae_images_per_call(k), k.min(crate::run::IWAE_ROWS)),
        };
        let eval = 2 * activations(crate::train::EVAL_BATCH, 1).max(iwae);
        // Values, gradients, an update's temporaries and the optimizer's slots; saving a
        // checkpoint holds about as much again (the file's bytes and a tensor's copies).
        let slots = self.optimizer.kind.slots().len() as u128;
        let data = train_images as u128 * self.model.input as u128;
        (2 * self.parameters() * (3 + slots) + train + eval) * 4 + data
    }
}

/// One forward matrix product of a model, as [`TrainConfig`]'s estimates count it.
#[derive(Clone, Copy, Debug)]
struct Product {
    /// Inputs per row (a convolution's `in·k·k`).
    inputs: u128,
    /// Outputs per row.
    outputs: u128,
    /// Rows (a convolution's: images times output pixels).
    rows: u128,
    /// Whether the input is the data (no input gradient in backward).
    from_data: bool,
    /// Floats the forward keeps: input, output and any column matrix.
    held: u128,
}

impl Product {
    fn macs(&self) -> u128 {
        self.rows * self.inputs * self.outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Likelihood, Objective, StochasticLayer};

    #[test]
    fn sizes_that_cannot_fit_are_refused_naming_the_flag() {
        let default = TrainConfig::default();
        let gb = |n: u64| MemoryLimit { bytes: n << 30, source: "this machine" };
        assert!(default.check_memory(60000, 0, &gb(1)).is_ok());
        let huge = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = TrainConfig::default();
            f(&mut c);
            c.check_memory(60000, 0, &gb(24)).unwrap_err().to_string()
        };
        let e = huge(&|c| c.model.hidden = vec![1_000_000_000]);
        assert!(e.starts_with("invalid configuration: --hidden 1000000000 would need about "), "{e}");
        assert!(e.ends_with("of memory, and this machine allows 25.8 GB; choose smaller sizes"), "{e}");
        assert!(huge(&|c| c.model.latent = 1_000_000_000_000_000_000)
            .starts_with("invalid configuration: --latent 1000000000000000000 would need"));
        assert!(huge(&|c| c.elbo.samples = 1_000_000_000).contains("--samples 1000000000 would need"));
        assert!(huge(&|c| c.model.decoder_hidden = Some(vec![10, 1 << 40]))
            .contains("--decoder-hidden 10,1099511627776"));
        let conv = |c: &mut TrainConfig, channels: Vec<usize>| {
            c.model.conv = Some(ConvNet { side: 28, channels }).into();
        };
        let e = huge(&|c| conv(c, vec![1_000_000, 1_000_000]));
        assert!(e.contains("--conv-channels 1000000,1000000 would need"), "{e}");
        // A flattened map past usize::MAX (channels · 7 · 7) is as large as can be, not
        // wrapped round to a small layer.
        assert_eq!(ConvNet { side: 28, channels: vec![8, usize::MAX / 40] }.flat(), usize::MAX);
        let e = huge(&|c| {
            c.model.upper = vec![StochasticLayer { hidden: vec![100, 1 << 30], latent: 50 }].into();
            c.elbo.objective = Objective::Iwae;
        });
        assert!(e.contains("--upper-hidden 100,1073741824 would need"), "{e}");
        // The dense layers after the convolutions count: `--arch conv --conv-channels 8,512
        // --latent 2000 --batch-size 1` (no hidden layer; 512 channels of 7×7 into a latent
        // of 2,000) peaks at 4.8 GB resident (`/usr/bin/time -v`).
        let mut wide = TrainConfig { batch_size: 1, ..TrainConfig::default() };
        conv(&mut wide, vec![8, 512]);
        wide.model.hidden.clear();
        wide.model.latent = 2000;
        assert!(wide.bytes_needed(60000, 0) > 4_800_000_000, "{}", wide.bytes_needed(60000, 0));
        // The batch is capped by the data: a huge batch on a small set fits.
        let big_batch = TrainConfig { batch_size: 1 << 40, ..TrainConfig::default() };
        assert!(big_batch.check_memory(1000, 0, &gb(1)).is_ok());
    }

    /// The parameter count that sizes the memory estimate and the products of a step is the
    /// model's, for every kind of layer.
    #[test]
    fn the_estimates_count_the_models_parameters() {
        let mut configs = vec![TrainConfig::default(), TrainConfig::burda(Objective::Iwae, 5, 2)];
        let mut conv = TrainConfig::default();
        conv.model.conv = Some(ConvNet { side: 28, channels: vec![4, 8] }).into();
        conv.model.likelihood = Likelihood::GaussianLearned;
        configs.push(conv);
        let mut odd = TrainConfig::default();
        odd.model.hidden = vec![30, 20];
        odd.model.decoder_hidden = Some(vec![10]);
        odd.model.likelihood = Likelihood::GaussianLearned;
        configs.push(odd);
        for c in configs {
            let model = crate::model::Vae::<f32>::build(c.model.clone(), |_, shape, _| {
                Ok::<_, ()>(tensor::Tensor::zeros(shape))
            })
            .unwrap();
            let built: usize = model.params.tensors().iter().map(|t| t.len()).sum();
            assert_eq!(c.parameters(), built as u128, "{:?}", c.model);
        }
    }

    #[test]
    fn multiply_adds_of_a_step() {
        // Default: 128·(784·400·2 + 400·20·3·2 + 20·400·3 + 400·784·3) = 209.9 M MACs.
        assert_eq!(
            TrainConfig::default().step_macs(),
            128 * (784 * 400 * 2 + 400 * 20 * 6 + 20 * 400 * 3 + 400 * 784 * 3)
        );
        // Burda, k = 5: the decoder's products see 100 rows.
        let b = TrainConfig::burda(Objective::Iwae, 5, 1);
        let enc = 20 * (784 * 200 * 2 + 200 * 200 * 3 + 200 * 50 * 6);
        let dec = 100 * (50 * 200 * 3 + 200 * 200 * 3 + 200 * 784 * 3);
        assert_eq!(b.step_macs(), enc + dec);
        b.validate().unwrap();
        // The k = 5000 evaluation of one image: the encoder once, the decoder 5000 times.
        let enc = 784 * 200 + 200 * 200 + 200 * 50 * 2;
        let dec = 5000 * (50 * 200 + 200 * 200 + 200 * 784);
        assert_eq!(b.forward_macs(1, 5000), enc + dec);
    }
}
