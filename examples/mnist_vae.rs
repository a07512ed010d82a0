//! Trains a VAE on MNIST (or any IDX image data), writing metrics, checkpoints and images. The
//! defaults are pytorch/examples' VAE (784-400-20, ReLU, Adam 1e-3, batch 128, Bernoulli
//! likelihood on continuous pixels); `--hidden 200,200 --activation tanh --latent 50`,
//! `--arch conv` (a convolutional encoder and decoder) and the other flags describe other
//! models.
//!
//! ```sh
//! cargo run --release --example mnist_vae -- --help
//! ```

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use vae::config::{
    burda_schedule, Activation, ConvNet, ElboConfig, Estimator, Init, Likelihood, Objective, OptimizerConfig,
    OptimizerKind, SigmaHead, StochasticLayer, TrainConfig, VaeConfig,
};
use vae::run::{run, RunOptions};

/// A named recipe: it sets many flags at once, and flags given explicitly still win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// Burda et al. (2016), one stochastic layer: 784-200-200-50 tanh, Glorot weights and the
    /// output bias at the mean image's logit, Adam (eps 1e-4), batch 20, dynamic binarization,
    /// the 3^i schedule (3,280 passes, 1e-3 down to 1e-4), objective elbo-mc; choose the row
    /// with --objective and --k.
    Burda,
}

/// The kind of encoder and decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Arch {
    /// Dense layers only (--hidden).
    Mlp,
    /// 4×4 stride-2 convolutions (--conv-channels) before the encoder's dense layers, and
    /// transposed convolutions after the decoder's; --hidden then defaults to none.
    Conv,
}

/// Train a variational autoencoder on MNIST (or any data in its IDX format).
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// A named recipe (burda); flags given explicitly override it.
    #[arg(long)]
    preset: Option<Preset>,
    /// Weight initialization: pytorch (nn.Linear's) or glorot (zero biases, and a Bernoulli
    /// output bias at the logit of the mean training image).
    #[arg(long, default_value = "pytorch")]
    init: Init,
    /// What the encoder's scale head outputs: logvar (σ = exp(½h)) or log-sigma (σ = exp(h),
    /// Burda et al.'s).
    #[arg(long, default_value = "logvar")]
    sigma: SigmaHead,
    /// Learning-rate schedule: none (--lr throughout) or burda (3^i passes per stage).
    #[arg(long, default_value = "none")]
    lr_schedule: Schedule,
    /// Directory of the four IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Epochs to train (in all, when resuming).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Hidden layers of the encoder, input side first, as a list (`200,200`); the decoder
    /// mirrors them unless --decoder-hidden says otherwise.
    #[arg(long, default_value = "400", value_delimiter = ',', value_parser = layer_size, allow_hyphen_values = true)]
    hidden: Vec<usize>,
    /// Hidden layers of the decoder, latent side first (default: the encoder's, reversed).
    #[arg(long, value_delimiter = ',', value_parser = layer_size, allow_hyphen_values = true)]
    decoder_hidden: Option<Vec<usize>>,
    /// Encoder and decoder: mlp, or conv (convolutions, then a dense layer to the latent).
    #[arg(long, default_value = "mlp")]
    arch: Arch,
    /// Channels of the convolutions with --arch conv, image side first; each halves the
    /// image's side, which must be divisible by 2 per convolution.
    #[arg(long, default_value = "32,64", value_delimiter = ',', value_parser = layer_size, allow_hyphen_values = true)]
    conv_channels: Vec<usize>,
    /// Nonlinearity of every hidden layer: relu, tanh, sigmoid or softplus.
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Stochastic layers: 1, or 2 for Burda et al.'s second layer above the first
    /// (`q(z₂|z₁)` and `p(z₁|z₂)` through --upper-hidden, z₂ of --upper-latent units; the
    /// first layer's --latent then defaults to 100). Two layers train with --objective
    /// elbo-mc or iwae.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=2))]
    stochastic_layers: u64,
    /// Hidden layers of the second stochastic layer's networks, as a list.
    #[arg(long, default_value = "100,100", value_delimiter = ',', value_parser = layer_size, allow_hyphen_values = true)]
    upper_hidden: Vec<usize>,
    /// Units of the second stochastic layer.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    upper_latent: u64,
    /// Latent dimensions (2 also draws the manifold and the latent scatter).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    latent: u64,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    lr: f64,
    /// Seed of initialization, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Decoder distribution: bernoulli, gaussian (unit variance) or gaussian-learned.
    #[arg(long, default_value = "bernoulli")]
    likelihood: Likelihood,
    /// Draw binary pixels afresh each epoch (dynamic binarization).
    #[arg(long)]
    binarize: bool,
    /// What training maximizes: elbo (closed-form KL, the default), elbo-mc (mean over the
    /// samples of log w) or iwae (the importance-weighted bound, log of the mean of w).
    #[arg(long, default_value = "elbo")]
    objective: Objective,
    /// Samples of z per image in training: L of the ELBO, k of the bounds (alias --k).
    #[arg(long, visible_alias = "k", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
    /// Weight of the KL term (β).
    #[arg(long, default_value_t = 1.0, value_parser = non_negative_f64)]
    beta: f64,
    /// Encoder gradient estimator: reparam, score (REINFORCE) or score-baseline (REINFORCE
    /// with the baseline log p(x | z = mu)).
    #[arg(long, default_value = "reparam")]
    estimator: Estimator,
    /// Optimizer: adam, sgd (momentum 0.9) or adagrad.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerKind,
    /// Adam's betas, as `beta1,beta2` (default 0.9,0.999).
    #[arg(long, value_parser = betas, allow_hyphen_values = true)]
    betas: Option<(f64, f64)>,
    /// The eps of Adam (default 1e-8) or Adagrad (default 1e-10).
    #[arg(long, value_parser = positive_f64)]
    eps: Option<f64>,
    /// SGD's momentum (default 0.9).
    #[arg(long, value_parser = non_negative_f64)]
    momentum: Option<f64>,
    /// L2 weight decay added to every gradient (PyTorch's `weight_decay`).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_f64)]
    weight_decay: f64,
    /// Samples of the importance-weighted bound on the test set after training (0 = off).
    #[arg(long, default_value_t = 0)]
    iwae_k: usize,
    /// Train on only the first N training images.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    train_limit: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "runs/mnist_vae")]
    out: PathBuf,
    /// Continue from this checkpoint.
    #[arg(long, value_parser = readable_file)]
    resume: Option<PathBuf>,
    /// Overwrite an output directory that holds another configuration's checkpoint.
    #[arg(long)]
    force: bool,
    /// Check every op for NaN and infinity, and name the first op and parameter that went
    /// non-finite (slower; like torch.autograd.detect_anomaly).
    #[arg(long)]
    detect_anomaly: bool,
}

/// A learning-rate schedule by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Schedule {
    /// `--lr` throughout.
    None,
    /// Burda et al.'s: for i = 0…7, 3^i passes at 1e-4 · round(10^(1 − i/7), 1).
    Burda,
}

/// Applies `preset` to every setting that was not given on the command line.
fn apply_preset(args: &mut Args, matches: &ArgMatches) {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let Some(Preset::Burda) = args.preset else { return };
    let recipe = TrainConfig::burda(Objective::ElboMc, 1, 1);
    if !given("hidden") {
        args.hidden = recipe.model.hidden.clone();
    }
    if !given("activation") {
        args.activation = recipe.model.activation;
    }
    if !given("latent") {
        args.latent = recipe.model.latent as u64;
    }
    if !given("init") {
        args.init = recipe.model.init;
    }
    if !given("sigma") {
        args.sigma = recipe.model.sigma;
    }
    if !given("batch_size") {
        args.batch_size = recipe.batch_size as u64;
    }
    if !given("binarize") {
        args.binarize = recipe.binarize;
    }
    if let (false, OptimizerKind::Adam { eps, .. }, "adam") =
        (given("eps"), recipe.optimizer.kind, args.optimizer.name())
    {
        args.eps = Some(eps);
    }
    if !given("lr_schedule") {
        args.lr_schedule = Schedule::Burda;
    }
    if !given("epochs") {
        args.epochs = recipe.epochs as u64;
    }
    if !given("objective") {
        args.objective = recipe.elbo.objective;
    }
}

/// The first stochastic layer of two is Burda et al.'s 100 units unless --latent says.
/// A convolutional model has no dense hidden layers unless --hidden says.
fn apply_layers(args: &mut Args, matches: &ArgMatches) {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if args.stochastic_layers == 2 && !given("latent") {
        args.latent = 100;
    }
    if args.arch == Arch::Conv && !given("hidden") {
        args.hidden.clear();
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

fn layer_size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive layer size (give a list like 200,200)")),
    }
}

fn betas(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("'{s}' is not two numbers in [0, 1) (like 0.9,0.999)");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let in_range = |v: &str| v.trim().parse::<f64>().ok().filter(|v| (0.0..1.0).contains(v)).ok_or_else(bad);
    Ok((in_range(a)?, in_range(b)?))
}

/// The optimizer the flags describe: the rule's defaults, overridden by any flag given.
fn optimizer(args: &Args) -> Result<OptimizerConfig, String> {
    let kind = match args.optimizer {
        OptimizerKind::Adam { beta1, beta2, eps } => {
            let (beta1, beta2) = args.betas.unwrap_or((beta1, beta2));
            OptimizerKind::Adam { beta1, beta2, eps: args.eps.unwrap_or(eps) }
        }
        OptimizerKind::Sgd { momentum } => OptimizerKind::Sgd { momentum: args.momentum.unwrap_or(momentum) },
        OptimizerKind::Adagrad { eps } => OptimizerKind::Adagrad { eps: args.eps.unwrap_or(eps) },
    };
    let unused = |flag: &str, given: bool, rules: &str| {
        if given {
            Err(format!("{flag} applies to {rules} only, not to --optimizer {}", args.optimizer))
        } else {
            Ok(())
        }
    };
    match kind {
        OptimizerKind::Adam { .. } => unused("--momentum", args.momentum.is_some(), "sgd")?,
        OptimizerKind::Sgd { .. } => {
            unused("--betas", args.betas.is_some(), "adam")?;
            unused("--eps", args.eps.is_some(), "adam and adagrad")?;
        }
        OptimizerKind::Adagrad { .. } => {
            unused("--betas", args.betas.is_some(), "adam")?;
            unused("--momentum", args.momentum.is_some(), "sgd")?;
        }
    }
    Ok(OptimizerConfig { kind, lr: args.lr, weight_decay: args.weight_decay })
}

/// A flag given on the command line that the chosen configuration would not use is an
/// error: a flag is honoured or refused, never dropped.
fn no_flag_without_effect(args: &Args, matches: &ArgMatches) -> Result<(), String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let refuse = |flag: &str, id: &str, unused: bool, why: &str| {
        if given(id) && unused {
            Err(format!("{flag} has no effect {why}"))
        } else {
            Ok(())
        }
    };
    let burda = args.lr_schedule == Schedule::Burda;
    refuse(
        "--lr",
        "lr",
        burda,
        "with --lr-schedule burda (the preset's schedule), whose stages set the rate; leave it out, or add --lr-schedule none",
    )?;
    refuse("--conv-channels", "conv_channels", args.arch != Arch::Conv, "without --arch conv")?;
    refuse("--upper-hidden", "upper_hidden", args.stochastic_layers != 2, "without --stochastic-layers 2")?;
    refuse("--upper-latent", "upper_latent", args.stochastic_layers != 2, "without --stochastic-layers 2")
}

fn readable_file(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    // Look before opening: opening a FIFO would block.
    let meta = std::fs::metadata(&p).map_err(|e| format!("cannot read '{s}': {e}"))?;
    if !meta.is_file() {
        return Err(format!("'{s}' is not a regular file"));
    }
    std::fs::File::open(&p).map_err(|e| format!("cannot read '{s}': {e}"))?;
    Ok(p)
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    apply_preset(&mut args, &matches);
    apply_layers(&mut args, &matches);
    if let Some(n) = args.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global() {
            eprintln!("error: cannot start {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let optimizer = match no_flag_without_effect(&args, &matches).and_then(|_| optimizer(&args)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let train = TrainConfig {
        model: VaeConfig {
            // The data decides: the run sets this from the images' size.
            input: 0,
            hidden: args.hidden.clone(),
            decoder_hidden: args.decoder_hidden.clone(),
            latent: args.latent as usize,
            activation: args.activation,
            likelihood: args.likelihood,
            init: args.init,
            sigma: args.sigma,
            upper: if args.stochastic_layers == 2 {
                vec![StochasticLayer {
                    hidden: args.upper_hidden.clone(),
                    latent: args.upper_latent as usize,
                }]
            } else {
                Vec::new()
            },
            // The data decides the side too.
            conv: (args.arch == Arch::Conv)
                .then(|| ConvNet { side: 0, channels: args.conv_channels.clone() }),
        },
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        seed: args.seed,
        binarize: args.binarize,
        elbo: ElboConfig {
            objective: args.objective,
            samples: args.samples as usize,
            beta: args.beta,
            estimator: args.estimator,
        },
        optimizer,
        train_limit: args.train_limit.map(|n| n as usize),
        lr_stages: match args.lr_schedule {
            Schedule::None => Vec::new(),
            Schedule::Burda => burda_schedule(),
        },
    };
    let opts = RunOptions {
        train,
        data_dir: args.data,
        out_dir: args.out,
        iwae_k: args.iwae_k,
        resume: args.resume,
        force: args.force,
        progress: std::io::stdout().is_terminal(),
        detect_anomaly: args.detect_anomaly,
    };
    // Progress lines go to stdout; if it is closed or full, training goes on regardless.
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    };
    match run(&opts, say) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
