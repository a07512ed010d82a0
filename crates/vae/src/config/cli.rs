//! The command line of a training run, derived from the configuration types. Every field of
//! [`TrainConfig`] carries its flag, default, help and parser in an `#[arg]` beside it; the
//! settings that take several flags ([`OptimizerKind`], [`UpperLayers`](super::UpperLayers),
//! [`Convolutions`](super::Convolutions)) implement `clap::Args` beside their types. This
//! module holds what spans fields: presets (a recipe written once, as flags), defaults that
//! follow from other flags, and the refusal of a flag the configuration would not use.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, FromArgMatches, ValueEnum};

use super::{OptimizerKind, TrainConfig};

/// A named recipe: flags read before the command line's own, which override them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Burda et al. (2016), one stochastic layer: 784-200-200-50 tanh, Glorot weights and the
    /// output bias at the mean image's logit, σ = exp(linear), Adam (eps 1e-4), batch 20,
    /// dynamic binarization, the 3^i schedule (3,280 passes, 1e-3 down to 1e-4), objective
    /// elbo-mc; choose the row with --objective, --k and --stochastic-layers.
    Burda,
}

impl Preset {
    /// The recipe, as the flags that state it.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Preset::Burda => &[
                "--hidden",
                "200,200",
                "--activation",
                "tanh",
                "--latent",
                "50",
                "--init",
                "glorot",
                "--sigma",
                "log-sigma",
                "--batch-size",
                "20",
                "--binarize",
                "--eps",
                "1e-4",
                "--lr-schedule",
                "burda",
                "--objective",
                "elbo-mc",
            ],
        }
    }
}

/// A parsed command line: what the user wrote, and what the run reads (a preset's flags,
/// then the user's).
#[derive(Debug)]
pub struct CommandLine {
    /// The user's flags alone: decides which settings were given.
    pub given: ArgMatches,
    /// The preset's flags followed by the user's: the values.
    pub values: ArgMatches,
}

impl CommandLine {
    /// Parses `argv` (program name first) for `cmd`, to which it adds `--preset`. The user's
    /// flags are parsed alone first, so help, version and errors are about what they wrote.
    pub fn parse<I, T>(cmd: Command, argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cmd = cmd.arg(
            Arg::new("preset")
                .long("preset")
                .value_name("PRESET")
                .display_order(0)
                .value_parser(clap::builder::EnumValueParser::<Preset>::new())
                .help("A named recipe (burda); flags given explicitly override it"),
        );
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let given = cmd.clone().try_get_matches_from(&argv)?;
        let values = match given.get_one::<Preset>("preset") {
            None => given.clone(),
            Some(preset) => {
                let flags = preset.flags().iter().map(OsString::from);
                let all = argv.iter().take(1).cloned().chain(flags).chain(argv.iter().skip(1).cloned());
                cmd.args_override_self(true).try_get_matches_from(all.collect::<Vec<_>>())?
            }
        };
        Ok(CommandLine { given, values })
    }

    /// True if the user wrote the flag of `id` (not a preset, not a default).
    pub fn gave(&self, id: &str) -> bool {
        self.given.try_contains_id(id).unwrap_or(false)
            && self.given.value_source(id) == Some(ValueSource::CommandLine)
    }

    /// The training configuration the flags describe: the fields' values, then the defaults
    /// that follow from other flags, then the refusal of any flag given that the
    /// configuration would not use (a flag is honoured or refused, never dropped).
    pub fn train_config(&self) -> Result<TrainConfig, clap::Error> {
        let mut c = TrainConfig::from_arg_matches(&self.values)?;
        // The first of two stochastic layers is Burda et al.'s 100 units.
        if !c.model.upper.is_empty() && !self.gave("latent") {
            c.model.latent = 100;
        }
        // Convolutions feed the latent directly unless dense layers are asked for.
        if c.model.conv.is_some() && !self.gave("hidden") {
            c.model.hidden.clear();
        }
        // A schedule is as long as its stages.
        if !c.lr_stages.is_empty() && !self.gave("epochs") {
            c.epochs = c.lr_stages.iter().map(|s| s.epochs).sum();
        }
        let refuse = |flag: &str, id: &str, unused: bool, why: &str| {
            if self.gave(id) && unused {
                Err(clap::Error::raw(ErrorKind::ArgumentConflict, format!("{flag} has no effect {why}\n")))
            } else {
                Ok(())
            }
        };
        refuse(
            "--lr",
            "lr",
            !c.lr_stages.is_empty(),
            "with --lr-schedule burda (the preset's schedule), whose stages set the rate; leave it out, or add --lr-schedule none",
        )?;
        refuse(
            "--decoupled-weight-decay",
            "decoupled_weight_decay",
            c.optimizer.weight_decay == 0.0,
            "without --weight-decay",
        )?;
        refuse("--conv-channels", "conv_channels", c.model.conv.is_none(), "without --arch conv")?;
        for (flag, id) in [("--upper-hidden", "upper_hidden"), ("--upper-latent", "upper_latent")] {
            refuse(flag, id, c.model.upper.is_empty(), "without --stochastic-layers 2")?;
        }
        let rule = c.optimizer.kind;
        for (flag, id) in OptimizerKind::FLAGS {
            if !rule.uses(id) {
                let rules = OptimizerKind::RULES.iter().filter(|r| r.uses(id)).map(|r| r.name());
                let why = format!(
                    "with --optimizer {rule} (it applies to {})",
                    rules.collect::<Vec<_>>().join(" and ")
                );
                refuse(flag, id, true, &why)?;
            }
        }
        Ok(c)
    }
}

/// Reads the command line `argv` (program name first) of a program whose flags `P` holds a
/// [`TrainConfig`] (reached through `config`), with `--preset`: help, version and bad flags
/// are returned as clap's errors, which print themselves and exit with code 2.
pub fn parse_run<P: clap::Parser>(
    argv: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    config: impl FnOnce(&mut P) -> &mut TrainConfig,
) -> Result<P, clap::Error> {
    let line = CommandLine::parse(P::command(), argv)?;
    let mut p = P::from_arg_matches(&line.values)?;
    *config(&mut p) = line.train_config()?;
    Ok(p)
}

/// A count of at least 1.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

/// A finite number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

/// One size of a list of layers (`200,200`).
pub fn layer_size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive layer size (give a list like 200,200)")),
    }
}

/// A regular file that can be opened for reading. It looks before opening: opening a FIFO
/// would block.
pub fn readable_file(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    let meta = std::fs::metadata(&p).map_err(|e| format!("cannot read '{s}': {e}"))?;
    if !meta.is_file() {
        return Err(format!("'{s}' is not a regular file"));
    }
    std::fs::File::open(&p).map_err(|e| format!("cannot read '{s}': {e}"))?;
    Ok(p)
}

/// The value of `T`'s flags when none is given: what `Default` is for the configuration
/// types, so that a default is written once, in the field's `#[arg]`.
pub(crate) fn defaults<T: clap::Args + FromArgMatches>() -> T {
    let matches = T::augment_args(Command::new("defaults"))
        .try_get_matches_from(["defaults"])
        .expect("every flag of a configuration has a default or is optional");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Only {
        #[command(flatten)]
        config: TrainConfig,
    }

    fn parse(args: &[&str]) -> Result<TrainConfig, String> {
        let argv = std::iter::once("test").chain(args.iter().copied());
        parse_run::<Only>(argv, |o| &mut o.config).map(|o| o.config).map_err(|e| e.to_string())
    }

    #[test]
    fn no_flags_are_the_default_configuration() {
        assert_eq!(parse(&[]).unwrap(), TrainConfig::default());
        assert_eq!(TrainConfig::default().batch_size, 128);
    }

    #[test]
    fn flags_given_override_the_preset_and_each_other() {
        let c = parse(&["--preset", "burda", "--hidden", "300", "--batch-size", "7"]).unwrap();
        assert_eq!((c.model.hidden, c.batch_size, c.epochs), (vec![300], 7, 3280));
        assert_eq!(c.model.activation, autograd::Activation::Tanh);
        let two =
            parse(&["--preset", "burda", "--stochastic-layers", "2", "--objective", "iwae", "--k", "5"]);
        assert_eq!(two.unwrap(), TrainConfig::burda(super::super::Objective::Iwae, 5, 2));
        assert!(parse(&["--hidden", "1", "--hidden", "2"])
            .unwrap_err()
            .contains("cannot be used multiple times"));
    }

    #[test]
    fn flags_without_effect_are_refused() {
        for (args, says) in [
            (
                &["--optimizer", "sgd", "--eps", "1e-3"][..],
                "--eps has no effect with --optimizer sgd (it applies to adam and adagrad)",
            ),
            (&["--momentum", "0.5"], "--momentum has no effect with --optimizer adam (it applies to sgd)"),
            (&["--preset", "burda", "--lr", "0.1"], "--lr has no effect with --lr-schedule burda"),
            (&["--upper-latent", "3"], "--upper-latent has no effect without --stochastic-layers 2"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        // The preset's --eps is not the user's: with SGD it is simply not used.
        let sgd = parse(&["--preset", "burda", "--optimizer", "sgd"]).unwrap();
        assert_eq!(sgd.optimizer.kind, OptimizerKind::Sgd { momentum: 0.9 });
    }
}
