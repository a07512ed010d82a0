//! The command line as a user meets it: bad data, bad flags and mismatched checkpoints each
//! give one clear error line and a non-zero exit code, never a panic; nothing is overwritten.

use std::process::Command;

mod common;

use common::{assert_error, bin, idx, quick, run, temp, with_data, write_data, Corruption};

#[test]
fn bad_data_gives_one_clear_line() {
    let base = temp("data");
    let out = base.join("out");
    let out = out.to_str().unwrap();

    let missing = base.join("nowhere");
    assert_error(&run(&quick(missing.to_str().unwrap(), out)), 1, &["nowhere", "not found"]);

    let cases: Vec<(&str, Corruption, Vec<&str>)> = vec![
        (
            "missing-file",
            Box::new(|d| std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap()),
            vec!["t10k-labels-idx1-ubyte", "not found"],
        ),
        (
            "magic",
            Box::new(|d| {
                std::fs::write(d.join("t10k-images-idx3-ubyte"), [7u8, 7, 8, 3, 0, 0, 0, 0]).unwrap()
            }),
            vec!["t10k-images-idx3-ubyte", "magic"],
        ),
        (
            "truncated",
            Box::new(|d| {
                let f = d.join("t10k-images-idx3-ubyte");
                let bytes = std::fs::read(&f).unwrap();
                std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
            }),
            vec!["t10k-images-idx3-ubyte", "truncated"],
        ),
        (
            "count",
            Box::new(|d| std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[9], &[1; 9])).unwrap()),
            vec!["t10k-labels-idx1-ubyte", "9 labels for 10 images"],
        ),
        (
            "zero-side",
            Box::new(|d| std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(&[10, 0, 28], &[])).unwrap()),
            vec!["t10k-images-idx3-ubyte", "dimensions [10, 0, 28]", "no pixels"],
        ),
        (
            "not-gzip",
            Box::new(|d| {
                std::fs::write(d.join("train-images-idx3-ubyte.gz"), b"this is not gzip data").unwrap()
            }),
            vec!["train-images-idx3-ubyte.gz", "not a valid gzip file"],
        ),
    ];
    for (name, corrupt, needles) in cases {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write_data(&dir, 20, 28);
        corrupt(&dir);
        assert_error(&run(&quick(dir.to_str().unwrap(), out)), 1, &needles);
    }
    std::fs::remove_dir_all(&base).unwrap();
}

/// The data decides the input size: 10×10 images train without a flag, with a deeper tanh
/// model, and a checkpoint of 28×28 images is refused for them, naming the difference.
#[test]
fn any_image_size_trains_and_sizes_are_checked_on_resume() {
    let base = temp("size");
    let (small, big) = (base.join("small"), base.join("big"));
    for (dir, side) in [(&small, 10), (&big, 28)] {
        std::fs::create_dir_all(dir).unwrap();
        write_data(dir, 20, side);
    }
    let out = base.join("out");
    let o = out.to_str().unwrap();
    let flags = |data: &'_ std::path::Path, epochs: &str| {
        let d = data.to_str().unwrap().to_string();
        [
            "--data",
            &d,
            "--out",
            o,
            "--epochs",
            epochs,
            "--latent",
            "2",
            "--hidden",
            "6,5",
            "--activation",
            "tanh",
        ]
        .map(String::from)
        .to_vec()
    };
    let args = flags(&small, "1");
    let ok = Command::new(bin()).args(&args).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["model"]["input"], 100);
    assert_eq!(summary["config"]["model"]["hidden"], serde_json::json!([6, 5]));
    assert!(out.join("reconstructions.png").is_file());
    let ckpt = out.join("checkpoint.safetensors");
    let mut resume = flags(&big, "2");
    resume.extend(["--resume".to_string(), ckpt.to_str().unwrap().to_string()]);
    let refused = Command::new(bin()).args(&resume).output().unwrap();
    assert_error(&refused, 1, &["checkpoint.safetensors", "model.input: 100 vs 784"]);
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn bad_flags_exit_with_code_2() {
    for (flags, needle) in [
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--epochs", "-3"], "--epochs"),
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["--latent", "0"], "--latent"),
        (vec!["--hidden", "200,0"], "'0' is not a positive layer size"),
        (vec!["--hidden", "200,x"], "'x' is not a positive layer size"),
        (vec!["--activation", "gelu"], "unknown activation 'gelu'"),
        (vec!["--betas", "0.9"], "'0.9' is not two numbers"),
        // A negative value is read as a value, not as a flag.
        (vec!["--betas", "-0.1,0.999"], "'-0.1,0.999' is not two numbers"),
        (vec!["--hidden", "-3,4"], "'-3' is not a positive layer size"),
        (vec!["--optimizer", "sgd", "--betas", "0.9,0.99"], "--betas has no effect with --optimizer sgd"),
        (vec!["--likelihood", "poisson"], "unknown likelihood 'poisson'"),
        (vec!["--lr", "-1"], "--lr"),
        // A flag the configuration would not use is refused, not dropped.
        (vec!["--preset", "burda", "--lr", "0.05"], "--lr has no effect with --lr-schedule burda"),
        (vec!["--lr-schedule", "burda", "--lr", "0.5"], "--lr has no effect with --lr-schedule burda"),
        (vec!["--conv-channels", "8,16"], "--conv-channels has no effect without --arch conv"),
        (vec!["--decoupled-weight-decay"], "--decoupled-weight-decay has no effect without --weight-decay"),
        (vec!["--upper-hidden", "50"], "--upper-hidden has no effect without --stochastic-layers 2"),
        (vec!["--upper-latent", "5"], "--upper-latent has no effect without --stochastic-layers 2"),
        (vec!["--resume", "/definitely/not/here.safetensors"], "cannot read"),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ] {
        assert_error(&run(&flags), 2, &["error:", needle]);
    }
}

#[test]
fn checkpoints_of_another_configuration_are_refused() {
    let (base, data) = with_data("ckpt", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    let ok = run(&quick(d, o));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let ckpt = out.join("checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();

    // Another configuration into the same --out: refused, checkpoint untouched.
    let mut other = quick(d, o);
    other[9] = "3";
    assert_error(&run(&other), 1, &["another configuration", "latent: 2 vs 3", "--resume", "--force"]);
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);

    // Resuming it with another configuration: refused, naming the difference.
    let elsewhere = base.join("elsewhere");
    let mut resume = other.clone();
    resume[3] = elsewhere.to_str().unwrap();
    resume.extend(["--resume", ckpt.to_str().unwrap()]);
    assert_error(&run(&resume), 1, &["checkpoint", "latent: 2 vs 3"]);

    // A file that is not a checkpoint.
    let junk = base.join("junk.safetensors");
    std::fs::write(&junk, b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage").unwrap();
    let mut r = quick(d, elsewhere.to_str().unwrap());
    r.extend(["--resume", junk.to_str().unwrap()]);
    assert_error(&run(&r), 1, &["junk.safetensors"]);

    // Resuming with the same configuration and more epochs works; --force overwrites.
    let mut more = quick(d, o);
    more[5] = "2";
    more.extend(["--resume", ckpt.to_str().unwrap()]);
    let r = run(&more);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let said = String::from_utf8_lossy(&r.stdout);
    assert!(said.contains("resumed from") && said.contains("after epoch 1 of 2"), "{said}");
    other.push("--force");
    assert!(run(&other).status.success());
    std::fs::remove_dir_all(&base).unwrap();
}

/// `--arch conv` trains on square images whose side its convolutions can halve, writes a
/// checkpoint of the convolutional shape, and refuses other sides with one line.
#[test]
fn a_convolutional_model_trains_and_refuses_sides_it_cannot_halve() {
    let base = temp("conv");
    let (square, odd) = (base.join("square"), base.join("odd"));
    for (dir, side) in [(&square, 12), (&odd, 10)] {
        std::fs::create_dir_all(dir).unwrap();
        write_data(dir, 20, side);
    }
    let out = base.join("out");
    let flags = |data: &std::path::Path| {
        let d = data.to_str().unwrap().to_string();
        ["--data", &d, "--out", out.to_str().unwrap(), "--epochs", "1", "--latent", "2", "--arch", "conv"]
            .map(String::from)
            .to_vec()
    };
    let mut args = flags(&square);
    args.extend(["--conv-channels", "3,4"].map(String::from));
    let ok = Command::new(bin()).args(&args).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["model"]["conv"], serde_json::json!({"side": 12, "channels": [3, 4]}));
    assert_eq!(summary["config"]["model"]["hidden"], serde_json::json!([]));
    // 10 is not divisible by 4: two stride-2 convolutions cannot halve it twice.
    let refused = Command::new(bin()).args(flags(&odd)).args(["--force"]).output().unwrap();
    assert_error(&refused, 2, &["2 stride-2 convolutions", "divisible by 4", "got 10"]);
    std::fs::remove_dir_all(&base).unwrap();
}

/// Every Burda row in `results/` is listed in `results/README.md` with the flags that
/// continue it, and those flags (less the run's own `--threads` and `--iwae-k`) give, field
/// for field, the configuration the run stored when it started. A finished row's bound and
/// active units are what the README and `docs/results.md` show beside the same command.
#[test]
fn the_burda_rows_in_results_are_the_ones_the_documents_show() {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        config: vae::config::TrainConfig,
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let (index, readme, results_md) = (read("results/README.md"), read("README.md"), read("docs/results.md"));
    let mut stored_rows = 0;
    for line in index.lines().filter(|l| l.starts_with("| `burda-")) {
        // | folder | row | build | flags | state |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (folder, flags, state) = (cells[1].trim_matches('`'), cells[4].trim_matches('`'), cells[5]);
        let dir = root.join("results").join(folder);
        let path = dir.join("checkpoint.safetensors");
        if !path.exists() {
            assert!(state.starts_with("running"), "{folder}: listed as {state:?} with no state");
            continue;
        }
        stored_rows += 1;

        // The configuration as the run reads it when it continues.
        let (stored, _) =
            vae::checkpoint::read_meta(&path, &vae::checkpoint::read_file(&path).unwrap()).unwrap();
        let (mut words, mut config_flags) = (flags.split_whitespace(), vec!["mnist_vae"]);
        while let Some(word) = words.next() {
            match word {
                "--threads" | "--iwae-k" => _ = words.next(),
                _ => config_flags.push(word),
            }
        }
        let parsed = vae::config::cli::parse_run::<Only>(config_flags, |o| &mut o.config).unwrap().config;
        assert_eq!(parsed, stored, "{folder}");

        let Ok(summary) = std::fs::read_to_string(dir.join("summary.json")) else {
            assert!(state.starts_with("running"), "{folder}: listed as {state:?} with no summary");
            continue;
        };
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        let bound = format!("{:.2}", summary["test_iwae_nll"].as_f64().unwrap());
        assert_eq!(state, format!("finished: {bound}"), "{folder}");
        let command = format!("`cargo run --release --example mnist_vae -- {flags} --out runs/{folder}`");
        let latents = std::iter::once(stored.model.latent).chain(stored.model.upper.iter().map(|u| u.latent));
        let active: Vec<String> = summary["active_units_per_layer"]
            .as_array()
            .unwrap()
            .iter()
            .zip(latents)
            .map(|(a, latent)| format!("{a} of {latent}"))
            .collect();
        for (document, text, shown) in [
            ("README.md", &readme, vec![format!("**{bound}**")]),
            ("docs/results.md", &results_md, vec![format!("**{bound}**"), active.join(", ")]),
        ] {
            let row = text.lines().find(|l| l.contains(&command));
            let row = row.unwrap_or_else(|| panic!("{document} has no row running {command}"));
            for shown in shown {
                assert!(row.contains(&format!("| {shown} |")), "{document}, {folder}: no {shown} in {row}");
            }
        }
    }
    assert!(stored_rows >= 5, "{stored_rows} rows found in results/README.md");
}

/// The theory examples' own flags: distributions that do not fit together get one line and
/// exit code 2.
#[test]
fn the_kl_example_refuses_distributions_that_do_not_fit() {
    for (args, needle) in [
        (vec!["--q", "1,1"], "--p has 3 outcomes and --q 2"),
        (vec!["--p", "0,0,0"], "--p needs a positive weight"),
        (vec!["--q", "1,-1,1"], "'-1' is not a non-negative weight"),
        (vec!["--mu", "0,0"], "--mu has 2 dimensions and --logvar 3"),
        (vec!["--logvar", "1e9,0,0"], "'1e9' is not a number in [-50, 50]"),
    ] {
        let out = Command::new(common::example("kl_divergence")).args(&args).output().unwrap();
        assert_error(&out, 2, &["error:", needle]);
    }
}

/// `iwae_per_image` without `--seed` gives the run's own evaluation image by image: the mean
/// of its lines is the summary's `test_iwae_nll`; with a seed, other draws give another.
#[test]
fn iwae_per_image_breaks_down_the_runs_evaluation() {
    let (base, data) = with_data("iwae-per-image", 64);
    let out = base.join("run");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let ran = run(&[quick(d, o), vec!["--binarize", "--iwae-k", "8"]].concat());
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let reported = summary["test_iwae_nll"].as_f64().unwrap();
    let checkpoint = out.join("checkpoint.safetensors");
    let mean_of = |extra: &[&str]| {
        let args =
            [&["--checkpoint", checkpoint.to_str().unwrap(), "--data", d, "--k", "8"][..], extra].concat();
        let run = Command::new(common::example("iwae_per_image")).args(&args).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let lines: Vec<f64> =
            String::from_utf8(run.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(lines.len(), 10, "one line per test image");
        lines.iter().sum::<f64>() / lines.len() as f64
    };
    let own = mean_of(&[]);
    assert!((own - reported).abs() < 1e-5, "{own} vs the run's {reported}");
    let other = mean_of(&["--seed", "7"]);
    assert!((other - reported).abs() > 1e-4, "seed 7 gave the run's draws: {other}");
    std::fs::remove_dir_all(&base).unwrap();
}
