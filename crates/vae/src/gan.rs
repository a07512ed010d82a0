//! A generative adversarial network beside the VAE: a generator `G(z)` that plays the part
//! of the VAE's decoder (noise in, image out) and a discriminator `D(x)` that scores images
//! as real or generated. `D` maximizes `log D(x) + log(1 − D(G(z)))`; `G` maximizes
//! `log D(G(z))` (the non-saturating form). Two parameter sets, two optimizers, and in the
//! discriminator's step the generator's samples are `detach`ed so its loss does not reach
//! the generator.
//!
//! Layers (pytorch-tutorial's vanilla GAN): `G`: z(64) → 256 → 256 (ReLU) → 784 (tanh), so
//! pixels in [−1, 1]; `D`: 784 → 256 → 256 (leaky ReLU 0.2) → 1 logit; real images are
//! scaled to [−1, 1] too. Names as PyTorch `Sequential`s would give them: `generator.0`,
//! `generator.2`, `generator.4`, `discriminator.0`, ….

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use tensor::Tensor;

use crate::config::{Activation, OptimizerConfig, OptimizerKind};
use crate::nn::{Linear, ParamSet};
use crate::optim::Optimizer;

/// The slope of the discriminator's leaky ReLUs for negative inputs.
const LEAK: f32 = 0.2;

/// The discriminator's target for real images: 0.9 rather than 1 (one-sided label
/// smoothing, Salimans et al. 2016), which keeps it from growing so sure that the
/// generator's gradient vanishes.
const REAL_TARGET: f32 = 0.9;

/// Generator and discriminator with their optimizers.
pub struct Gan {
    /// The generator's parameters.
    pub generator: ParamSet<f32>,
    /// The discriminator's parameters.
    pub discriminator: ParamSet<f32>,
    g_layers: [Linear; 3],
    d_layers: [Linear; 3],
    g_opt: Optimizer<f32>,
    d_opt: Optimizer<f32>,
    /// Noise dimensions.
    pub noise: usize,
    graph: Graph<f32>,
}

/// One step's losses (means over the batch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanLosses {
    /// `−[log D(x) + log(1 − D(G(z)))]`.
    pub discriminator: f64,
    /// `−log D(G(z))`.
    pub generator: f64,
}

impl Gan {
    /// A GAN for images of `pixels` pixels with PyTorch's `nn.Linear` initialization, both
    /// optimizers Adam at learning rate `lr` with PyTorch's defaults.
    pub fn new<R: Rng + ?Sized>(pixels: usize, noise: usize, lr: f64, rng: &mut R) -> Self {
        let mut generator = ParamSet::new();
        let g_layers = [
            Linear::new(&mut generator, "generator.0", noise, 256, rng),
            Linear::new(&mut generator, "generator.2", 256, 256, rng),
            Linear::new(&mut generator, "generator.4", 256, pixels, rng),
        ];
        let mut discriminator = ParamSet::new();
        let d_layers = [
            Linear::new(&mut discriminator, "discriminator.0", pixels, 256, rng),
            Linear::new(&mut discriminator, "discriminator.2", 256, 256, rng),
            Linear::new(&mut discriminator, "discriminator.4", 256, 1, rng),
        ];
        let config = OptimizerConfig { kind: OptimizerKind::adam(), lr, weight_decay: 0.0 };
        let g_opt = Optimizer::new(config, &generator);
        let d_opt = Optimizer::new(config, &discriminator);
        Gan { generator, discriminator, g_layers, d_layers, g_opt, d_opt, noise, graph: Graph::new() }
    }

    /// The generator's pixel logits for noise `z`.
    fn generate<'g>(&self, g: &[Var<'g, f32>], z: Var<'g, f32>) -> Var<'g, f32> {
        let [l0, l1, l2] = &self.g_layers;
        let h = l0.forward_act(g, z, Activation::Relu);
        let h = l1.forward_act(g, h, Activation::Relu);
        l2.forward_act(g, h, Activation::Tanh)
    }

    /// The discriminator's logit of "real" for images `x`, `[n, 1]`.
    fn discriminate<'g>(&self, d: &[Var<'g, f32>], x: Var<'g, f32>) -> Var<'g, f32> {
        let [l0, l1, l2] = &self.d_layers;
        let h = l0.forward(d, x).leaky_relu(LEAK);
        let h = l1.forward(d, h).leaky_relu(LEAK);
        l2.forward(d, h)
    }

    /// The discriminator's loss `−mean[log D(x) + log(1 − D(G(z)))]` on real images `x` and
    /// generator samples for noise `z`, with the samples detached from the generator when
    /// `detach` (as in training; without it the loss would reach the generator too).
    pub fn discriminator_loss<'g>(
        &self,
        gv: &[Var<'g, f32>],
        dv: &[Var<'g, f32>],
        x: &Tensor<f32>,
        z: &Tensor<f32>,
        detach: bool,
    ) -> Var<'g, f32> {
        let g = dv[0].graph();
        let n = x.shape()[0];
        let fake = self.generate(gv, g.constant(z.clone()));
        let fake = if detach { fake.detach() } else { fake };
        let real_logit = self.discriminate(dv, g.constant(x.clone()));
        let fake_logit = self.discriminate(dv, fake);
        let real = g.constant(Tensor::full(&[n, 1], REAL_TARGET));
        let zeros = g.constant(Tensor::zeros(&[n, 1]));
        (real_logit.bce_with_logits(real) + fake_logit.bce_with_logits(zeros)).mean()
    }

    /// Images drawn from the generator for noise `z` (`[n, noise]`), pixels mapped back to
    /// [0, 1].
    pub fn sample(&self, z: &Tensor<f32>) -> Tensor<f32> {
        let g = Graph::no_grad();
        let vars: Vec<_> = self.generator.tensors().iter().map(|t| g.constant(t.clone())).collect();
        self.generate(&vars, g.constant(z.clone())).value().add_scalar(1.0).mul_scalar(0.5)
    }

    /// One step of each player on a batch of real images `x` (`[n, pixels]`, in [0, 1]):
    /// first the discriminator (on `x` and on detached generator samples), then the
    /// generator (through the updated discriminator). Returns both losses.
    pub fn step<R: Rng + ?Sized>(&mut self, x: &Tensor<f32>, rng: &mut R) -> GanLosses
    where
        StandardNormal: Distribution<f32>,
    {
        let n = x.shape()[0];
        // The generator's tanh draws pixels in [−1, 1]; the real images are put there too.
        let x = &x.mul_scalar(2.0).add_scalar(-1.0);
        let z = Tensor::<f32>::randn(&[n, self.noise], rng);
        let (d_loss, d_grads) = {
            let g = &self.graph;
            let gv = self.generator.bind(g);
            let dv = self.discriminator.bind(g);
            let loss = self.discriminator_loss(&gv, &dv, x, &z, true);
            let grads = loss.backward();
            let d_grads: Vec<Tensor<f32>> =
                dv.iter().map(|&v| grads.get(v).expect("D takes part").clone()).collect();
            (loss.value().item() as f64, d_grads)
        };
        self.graph.reset();
        self.d_opt.step(&mut self.discriminator, &d_grads);
        let (g_loss, g_grads) = {
            let g = &self.graph;
            let gv = self.generator.bind(g);
            let dv: Vec<_> = self.discriminator.tensors().iter().map(|t| g.constant(t.clone())).collect();
            let fake = self.generate(&gv, g.constant(z));
            let ones = g.constant(Tensor::ones(&[n, 1]));
            let loss = self.discriminate(&dv, fake).bce_with_logits(ones).mean();
            let grads = loss.backward();
            let g_grads: Vec<Tensor<f32>> =
                gv.iter().map(|&v| grads.get(v).expect("G takes part").clone()).collect();
            (loss.value().item() as f64, g_grads)
        };
        self.graph.reset();
        self.g_opt.step(&mut self.generator, &g_grads);
        GanLosses { discriminator: d_loss, generator: g_loss }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn detach_keeps_the_discriminator_loss_off_the_generator() {
        let mut rng = StdRng::seed_from_u64(1);
        let gan = Gan::new(12, 4, 1e-3, &mut rng);
        let x = Tensor::rand_uniform(&[5, 12], 0.0, 1.0, &mut rng);
        let z = Tensor::randn(&[5, 4], &mut rng);
        for detach in [true, false] {
            let g = Graph::new();
            let (gv, dv) = (gan.generator.bind(&g), gan.discriminator.bind(&g));
            let grads = gan.discriminator_loss(&gv, &dv, &x, &z, detach).backward();
            assert!(dv.iter().all(|&v| grads.get(v).is_some()));
            assert_eq!(gv.iter().all(|&v| grads.get(v).is_none()), detach, "detach {detach}");
        }
    }

    #[test]
    fn a_step_moves_both_players() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut gan = Gan::new(12, 4, 1e-2, &mut rng);
        let x = Tensor::rand_uniform(&[8, 12], 0.0, 1.0, &mut rng);
        let (g0, d0) = (gan.generator.tensors()[0].to_vec(), gan.discriminator.tensors()[0].to_vec());
        let losses = gan.step(&x, &mut rng);
        assert!(losses.discriminator.is_finite() && losses.generator.is_finite());
        assert_ne!(gan.generator.tensors()[0].to_vec(), g0);
        assert_ne!(gan.discriminator.tensors()[0].to_vec(), d0);
        let s = gan.sample(&Tensor::randn(&[3, 4], &mut rng));
        assert_eq!(s.shape(), &[3, 12]);
        assert!(s.to_vec().iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
}
