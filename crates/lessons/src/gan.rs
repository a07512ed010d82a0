//! A generative adversarial network beside the VAE: a generator `G(z)` that plays the part
//! of the VAE's decoder (noise in, image out) and a discriminator `D(x)` that scores images
//! as real or generated. `D` maximizes `0.9·log D(x) + 0.1·log(1 − D(x)) + log(1 − D(G(z)))`
//! (the cross-entropy with real images' target smoothed to 0.9); `G` maximizes
//! `log D(G(z))` (the non-saturating form). Two parameter sets, two optimizers, and in the
//! discriminator's step the generator's samples are `detach`ed so its loss does not reach
//! the generator. [`discriminator_objective`] and [`optimal_discriminator`] state the game
//! on a discrete sample space, where its optimum can be written down.
//!
//! Layers (pytorch-tutorial's vanilla GAN): `G`: z(64) → 256 → 256 (ReLU) → 784 (tanh), so
//! pixels in [−1, 1]; `D`: 784 → 256 → 256 (leaky ReLU 0.2) → 1 logit; real images are
//! scaled to [−1, 1] too. Names as PyTorch `Sequential`s would give them: `generator.0`,
//! `generator.2`, `generator.4`, `discriminator.0`, ….

use autograd::{Graph, Var};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use tensor::Tensor;

use vae::config::{Activation, OptimizerConfig, OptimizerKind};
use vae::nn::{Linear, ParamSet};
use vae::optim::Optimizer;
use vae::train::{train_step, Parameters, StepFailure};
use vae::{Result, VaeError};

/// The slope of the discriminator's leaky ReLUs for negative inputs.
const LEAK: f32 = 0.2;

/// The discriminator's target for real images: 0.9 rather than 1 (one-sided label
/// smoothing, Salimans et al. 2016), which keeps it from growing so sure that the
/// generator's gradient vanishes.
const REAL_TARGET: f32 = 0.9;

/// The generator: noise → pixels in [−1, 1].
pub struct Generator {
    /// Its parameters (`generator.0.weight`, …).
    pub params: ParamSet<f32>,
    layers: [Linear; 3],
}

impl Generator {
    /// Pixels in [−1, 1] (tanh) for noise `z`, over parameters bound as `vars`.
    pub fn forward<'g>(&self, vars: &[Var<'g, f32>], z: Var<'g, f32>) -> Var<'g, f32> {
        let [l0, l1, l2] = &self.layers;
        let h = l0.forward_act(vars, z, Activation::Relu);
        let h = l1.forward_act(vars, h, Activation::Relu);
        l2.forward_act(vars, h, Activation::Tanh)
    }
}

/// The discriminator: pixels in [−1, 1] → the logit of "real".
pub struct Discriminator {
    /// Its parameters (`discriminator.0.weight`, …).
    pub params: ParamSet<f32>,
    layers: [Linear; 3],
}

impl Discriminator {
    /// The logit of "real" for images `x`, `[n, 1]`, over parameters bound as `vars`.
    pub fn forward<'g>(&self, vars: &[Var<'g, f32>], x: Var<'g, f32>) -> Var<'g, f32> {
        let [l0, l1, l2] = &self.layers;
        let h = l0.forward(vars, x).leaky_relu(LEAK);
        let h = l1.forward(vars, h).leaky_relu(LEAK);
        l2.forward(vars, h)
    }

    /// The discriminator's loss `−mean[log D(x) + log(1 − D(G(z)))]` (with the real target
    /// smoothed to 0.9) on real images `x` and `generator`'s samples for noise `z`, with the
    /// samples detached from the generator when `detach` (as in training; without it the
    /// loss would reach the generator too). `gv` and `dv` are the two players' bound
    /// parameters.
    pub fn loss<'g>(
        &self,
        generator: &Generator,
        gv: &[Var<'g, f32>],
        dv: &[Var<'g, f32>],
        x: &Tensor<f32>,
        z: &Tensor<f32>,
        detach: bool,
    ) -> Var<'g, f32> {
        let g = dv[0].graph();
        let n = x.shape()[0];
        let fake = generator.forward(gv, g.constant(z.clone()));
        let fake = if detach { fake.detach() } else { fake };
        let real_logit = self.forward(dv, g.constant(x.clone()));
        let fake_logit = self.forward(dv, fake);
        let real = g.constant(Tensor::full(&[n, 1], REAL_TARGET));
        let zeros = g.constant(Tensor::zeros(&[n, 1]));
        (real_logit.bce_with_logits(real) + fake_logit.bce_with_logits(zeros)).mean()
    }
}

impl Parameters<f32> for Generator {
    fn params(&self) -> &ParamSet<f32> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamSet<f32> {
        &mut self.params
    }
}

impl Parameters<f32> for Discriminator {
    fn params(&self) -> &ParamSet<f32> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamSet<f32> {
        &mut self.params
    }
}

/// Generator and discriminator with their optimizers.
pub struct Gan {
    /// The generator.
    pub generator: Generator,
    /// The discriminator.
    pub discriminator: Discriminator,
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
        let mut params = ParamSet::new();
        let layers = [
            Linear::new(&mut params, "generator.0", noise, 256, rng),
            Linear::new(&mut params, "generator.2", 256, 256, rng),
            Linear::new(&mut params, "generator.4", 256, pixels, rng),
        ];
        let generator = Generator { params, layers };
        let mut params = ParamSet::new();
        let layers = [
            Linear::new(&mut params, "discriminator.0", pixels, 256, rng),
            Linear::new(&mut params, "discriminator.2", 256, 256, rng),
            Linear::new(&mut params, "discriminator.4", 256, 1, rng),
        ];
        let discriminator = Discriminator { params, layers };
        let config = OptimizerConfig { kind: OptimizerKind::adam(), lr, ..OptimizerConfig::default() };
        let g_opt = Optimizer::new(config, &generator.params);
        let d_opt = Optimizer::new(config, &discriminator.params);
        Gan { generator, discriminator, g_opt, d_opt, noise, graph: Graph::new() }
    }

    /// A generous estimate of the bytes [`Gan::new`] and its training steps on batches of
    /// `batch` images allocate: both players' parameters with gradients, temporaries and
    /// Adam's two slots, and a step's activations (the real and the generated batch through
    /// both networks, with gradients). Exact in `u128`.
    pub fn bytes_needed(pixels: usize, noise: usize, batch: usize) -> u128 {
        let (p, z, b, h) = (pixels as u128, noise as u128, batch as u128, 256u128);
        let generator = z * h + h + h * h + h + h * p + p;
        let discriminator = p * h + h + h * h + h + h + 1;
        let activations = 2 * b * (z + 2 * h + p + 2 * h + 1);
        4 * (5 * (generator + discriminator) + 4 * activations)
    }

    /// Images drawn from the generator for noise `z` (`[n, noise]`), pixels mapped back to
    /// [0, 1].
    pub fn sample(&self, z: &Tensor<f32>) -> Tensor<f32> {
        let g = Graph::no_grad();
        let vars: Vec<_> = self.generator.params.tensors().iter().map(|t| g.constant(t.clone())).collect();
        self.generator.forward(&vars, g.constant(z.clone())).value().add_scalar(1.0).mul_scalar(0.5)
    }

    /// One step of each player on a batch of real images `x` (`[n, pixels]`, in [0, 1]),
    /// each through [`train_step`]: first the discriminator (on `x` and on detached
    /// generator samples), then the generator (through the updated discriminator, held
    /// constant). Returns both losses; a non-finite one stops with an error naming the
    /// player and the step, before that player's update.
    pub fn step<R: Rng + ?Sized>(&mut self, x: &Tensor<f32>, rng: &mut R) -> Result<GanLosses>
    where
        StandardNormal: Distribution<f32>,
    {
        let n = x.shape()[0];
        // The generator's tanh draws pixels in [−1, 1]; the real images are put there too.
        let x = &x.mul_scalar(2.0).add_scalar(-1.0);
        let z = Tensor::<f32>::randn(&[n, self.noise], rng);
        let failed = |who: &'static str, steps: u64| {
            move |f: StepFailure| VaeError::NonFinite(f.message(&format!("{who} step {}", steps + 1)))
        };
        let generator = &self.generator;
        let (d_loss, _) =
            train_step(&mut self.graph, &mut self.discriminator, &mut self.d_opt, |g, d, dv| {
                let gv = generator.params.bind(g);
                let loss = d.loss(generator, &gv, dv, x, &z, true);
                let value = loss.value().item() as f64;
                (loss, value)
            })
            .map_err(failed("discriminator", self.d_opt.steps))?;
        let discriminator = &self.discriminator;
        let (g_loss, _) = train_step(&mut self.graph, &mut self.generator, &mut self.g_opt, |g, gen, gv| {
            let dv: Vec<_> = discriminator.params.tensors().iter().map(|t| g.constant(t.clone())).collect();
            let fake = gen.forward(gv, g.constant(z));
            let ones = g.constant(Tensor::ones(&[n, 1]));
            let loss = discriminator.forward(&dv, fake).bce_with_logits(ones).mean();
            let value = loss.value().item() as f64;
            (loss, value)
        })
        .map_err(failed("generator", self.g_opt.steps))?;
        Ok(GanLosses { discriminator: d_loss, generator: g_loss })
    }
}

/// The discriminator's objective on a discrete sample space, which it maximizes: data
/// distribution `p`, generator distribution `q`, the discriminator's probability `d` of
/// "real" for each outcome, and real images' target `real_target` (1 without smoothing):
/// `E_p[t·log d + (1 − t)·log(1 − d)] + E_q[log(1 − d)]`, with `0 · log 0 = 0`.
pub fn discriminator_objective(p: &[f64], q: &[f64], d: &[f64], real_target: f64) -> f64 {
    let xlogy = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * y.ln() };
    p.iter()
        .zip(q)
        .zip(d)
        .map(|((&p, &q), &d)| {
            xlogy(p * real_target, d) + xlogy(p * (1.0 - real_target), 1.0 - d) + xlogy(q, 1.0 - d)
        })
        .sum()
}

/// The discriminator that maximizes [`discriminator_objective`]: `d = t·p/(p + q)` for each
/// outcome (setting the objective's derivative `t·p/d − ((1 − t)·p + q)/(1 − d)` to zero),
/// and 0 where `p + q = 0` (where the objective does not depend on `d`).
pub fn optimal_discriminator(p: &[f64], q: &[f64], real_target: f64) -> Vec<f64> {
    p.iter().zip(q).map(|(&p, &q)| if p + q > 0.0 { real_target * (p / (p + q)) } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// A distribution over `n` outcomes, with some outcomes of probability 0.
    fn distribution(n: usize, rng: &mut StdRng) -> Vec<f64> {
        let w: Vec<f64> =
            (0..n).map(|_| if rng.random_bool(0.2) { 0.0 } else { rng.random::<f64>() }).collect();
        let s: f64 = w.iter().sum();
        w.iter().map(|v| v / s.max(f64::MIN_POSITIVE)).collect()
    }

    /// Goodfellow et al.'s result: against the best discriminator (no smoothing) the game's
    /// value is `2·JSD(p ‖ q) − log 4`, which the generator minimizes at `q = p`.
    #[test]
    fn against_the_best_discriminator_the_value_is_twice_the_jsd_minus_log_4() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let (p, q) = (distribution(12, &mut rng), distribution(12, &mut rng));
            let value = discriminator_objective(&p, &q, &optimal_discriminator(&p, &q, 1.0), 1.0);
            let jsd = crate::info::js_divergence(&p, &q).unwrap();
            assert!((value - (2.0 * jsd - 4f64.ln())).abs() < 1e-12, "{value} against {jsd}");
            // JSD alone, or JSD − log 4, would be off by a factor or a constant.
            assert!((value - (jsd - 4f64.ln())).abs() > 1e-6 || jsd < 1e-9);
        }
        let p = distribution(12, &mut rng);
        let value = discriminator_objective(&p, &p, &optimal_discriminator(&p, &p, 1.0), 1.0);
        assert!((value + 4f64.ln()).abs() < 1e-12);
    }

    /// With real images' target at 0.9 the best discriminator is `0.9·p/(p + q)`: no
    /// nearby `d` does better, and it never says more than 0.9 of any image.
    #[test]
    fn with_smoothing_the_best_discriminator_is_nine_tenths_of_the_unsmoothed_one() {
        let mut rng = StdRng::seed_from_u64(6);
        for _ in 0..100 {
            let (p, q) = (distribution(8, &mut rng), distribution(8, &mut rng));
            let best = optimal_discriminator(&p, &q, 0.9);
            let top = discriminator_objective(&p, &q, &best, 0.9);
            for i in (0..8).filter(|&i| p[i] + q[i] > 0.0) {
                for delta in [-1e-3, 1e-3] {
                    let mut d = best.clone();
                    d[i] = (d[i] + delta).clamp(1e-12, 1.0 - 1e-12);
                    assert!(discriminator_objective(&p, &q, &d, 0.9) <= top, "outcome {i}");
                }
            }
            assert!(best.iter().all(|&d| d <= 0.9));
            for i in (0..8).filter(|&i| p[i] > 0.0 && q[i] == 0.0) {
                assert_eq!(best[i], 0.9);
            }
        }
    }

    #[test]
    fn detach_keeps_the_discriminator_loss_off_the_generator() {
        let mut rng = StdRng::seed_from_u64(1);
        let gan = Gan::new(12, 4, 1e-3, &mut rng);
        let x = Tensor::rand_uniform(&[5, 12], 0.0, 1.0, &mut rng);
        let z = Tensor::randn(&[5, 4], &mut rng);
        for detach in [true, false] {
            let g = Graph::new();
            let (gv, dv) = (gan.generator.params.bind(&g), gan.discriminator.params.bind(&g));
            let grads = gan.discriminator.loss(&gan.generator, &gv, &dv, &x, &z, detach).backward();
            assert!(dv.iter().all(|&v| grads.get(v).is_some()));
            assert_eq!(gv.iter().all(|&v| grads.get(v).is_none()), detach, "detach {detach}");
        }
    }

    #[test]
    fn a_step_moves_both_players() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut gan = Gan::new(12, 4, 1e-2, &mut rng);
        let x = Tensor::rand_uniform(&[8, 12], 0.0, 1.0, &mut rng);
        let first = |p: &ParamSet<f32>| p.tensors()[0].to_vec();
        let (g0, d0) = (first(&gan.generator.params), first(&gan.discriminator.params));
        let losses = gan.step(&x, &mut rng).unwrap();
        assert!(losses.discriminator.is_finite() && losses.generator.is_finite());
        assert_ne!(first(&gan.generator.params), g0);
        assert_ne!(first(&gan.discriminator.params), d0);
        // A NaN image stops the step before the discriminator moves, naming it.
        let d1 = first(&gan.discriminator.params);
        let mut bad = x.to_vec();
        bad[3] = f32::NAN;
        let err = gan.step(&Tensor::from_vec(bad, &[8, 12]), &mut rng).unwrap_err().to_string();
        assert!(err.starts_with("non-finite loss (NaN) at discriminator step 2"), "{err}");
        assert_eq!(first(&gan.discriminator.params), d1);
        let s = gan.sample(&Tensor::randn(&[3, 4], &mut rng));
        assert_eq!(s.shape(), &[3, 12]);
        assert!(s.to_vec().iter().all(|&p| (0.0..=1.0).contains(&p)));
    }
}
