//! What a run guarantees, tried through the real binary as an adversarial user would: no run
//! loses or rewinds a user's work, one run per directory, nothing non-finite is saved, and
//! no input (sizes, files, streams) crashes the program.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_error, bin, gz, idx, quick, run, temp, with_data, write_data};

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn epochs_in(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.csv")).unwrap().lines().count() - 1
}

/// `--resume` does not bypass the `--out` guard: a directory holding another
/// configuration's run is refused and left exactly as it was.
#[test]
fn resume_into_a_directory_of_another_run_is_refused() {
    let (base, data) = with_data("g-resume", 20);
    let d = data.to_str().unwrap();
    let (a, b) = (base.join("a"), base.join("b"));
    ok(&quick(d, a.to_str().unwrap()));
    let mut other = quick(d, b.to_str().unwrap());
    other[9] = "3"; // --latent 3
    ok(&other);
    let before: Vec<Vec<u8>> = ["checkpoint.safetensors", "metrics.csv", "summary.json"]
        .iter()
        .map(|f| std::fs::read(a.join(f)).unwrap())
        .collect();
    let b_ckpt = b.join("checkpoint.safetensors");
    let mut into_a = other.clone();
    into_a[3] = a.to_str().unwrap();
    into_a[5] = "2";
    into_a.extend(["--resume", b_ckpt.to_str().unwrap()]);
    assert_error(&run(&into_a), 1, &["output directory", "another configuration", "latent: 2 vs 3"]);
    for (f, was) in ["checkpoint.safetensors", "metrics.csv", "summary.json"].iter().zip(before) {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), was, "{f} changed");
    }
    std::fs::remove_dir_all(&base).unwrap();
}

/// The same command again never rewinds: fewer epochs is refused, the same number has
/// nothing to do, more continues; only --force starts over.
#[test]
fn rerunning_a_command_continues_or_refuses_never_rewinds() {
    let (base, data) = with_data("g-rerun", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("c"));
    let o = out.to_str().unwrap();
    let with_epochs = |n: &'static str| {
        let mut a = quick(d, o);
        a[5] = n;
        a
    };
    ok(&with_epochs("3"));
    let ckpt = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    assert_error(&run(&with_epochs("1")), 1, &["holds 3 epochs, more than --epochs 1"]);
    assert_eq!(std::fs::read(out.join("checkpoint.safetensors")).unwrap(), ckpt);
    assert_eq!(epochs_in(&out), 3);
    let said = ok(&with_epochs("3"));
    assert!(said.contains("continuing the run") && said.contains("nothing left to train"), "{said}");
    assert_eq!(epochs_in(&out), 3);
    let said = ok(&with_epochs("4"));
    assert!(said.contains("after epoch 3 of 4") && said.contains("epoch 4 train_neg_elbo"), "{said}");
    assert!(!said.contains("epoch 1 train_neg_elbo"), "{said}");
    assert_eq!(epochs_in(&out), 4);
    let mut force = with_epochs("1");
    force.push("--force");
    ok(&force);
    assert_eq!(epochs_in(&out), 1);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A resume from an older checkpoint into a directory with a further-trained one of the
/// same run is refused: it would lose epochs.
#[test]
fn resuming_an_older_checkpoint_over_a_newer_one_is_refused() {
    let (base, data) = with_data("g-older", 20);
    let d = data.to_str().unwrap();
    let (old, new) = (base.join("old"), base.join("new"));
    ok(&quick(d, old.to_str().unwrap()));
    let mut two = quick(d, new.to_str().unwrap());
    two[5] = "2";
    ok(&two);
    let old_ckpt = old.join("checkpoint.safetensors");
    let mut three = two.clone();
    three[5] = "3";
    three.extend(["--resume", old_ckpt.to_str().unwrap()]);
    assert_error(&run(&three), 1, &["trained for 2 epochs, further than --resume's 1"]);
    assert_eq!(epochs_in(&new), 2);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A model whose test ELBO is not finite stops the run before anything is saved: the
/// previous checkpoint stays and can be resumed. (Training images are black and test images
/// white; a first-layer weight of 1e36 is harmless on black pixels and overflows on white.)
#[test]
fn a_non_finite_evaluation_keeps_the_last_good_checkpoint() {
    use vae::config::{TrainConfig, VaeConfig};

    let base = temp("g-nonfinite");
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let side = 4u32;
    let images = |n: u32, v: u8| idx(&[n, side, side], &vec![v; (n * side * side) as usize]);
    let labels = |n: u32| idx(&[n], &vec![0; n as usize]);
    std::fs::write(data.join("train-images-idx3-ubyte"), images(20, 0)).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte"), labels(20)).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte"), images(10, 255)).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), labels(10)).unwrap();
    let out = base.join("out");
    let o = out.to_str().unwrap();
    let d = data.to_str().unwrap();
    ok(&["--data", d, "--out", o, "--epochs", "1", "--hidden", "8", "--latent", "2"]);
    // Poison epoch 1's checkpoint the way a diverging run would, through the library.
    let cfg = TrainConfig {
        model: VaeConfig { input: 16, hidden: vec![8], latent: 2, ..VaeConfig::default() },
        epochs: 1,
        ..TrainConfig::default()
    };
    let ckpt = out.join("checkpoint.safetensors");
    let (mut t, _) = vae::checkpoint::load(&ckpt, &cfg).unwrap();
    let w = &mut t.model.params.tensors_mut()[0];
    *w = tensor::Tensor::full(w.shape(), 1e36);
    vae::checkpoint::save(&ckpt, &t).unwrap();
    let good = std::fs::read(&ckpt).unwrap();
    let out2 = run(&["--data", d, "--out", o, "--epochs", "2", "--hidden", "8", "--latent", "2"]);
    assert_error(&out2, 1, &["epoch 2 gave a non-finite negative ELBO", "still holds epoch 1"]);
    assert_eq!(std::fs::read(&ckpt).unwrap(), good, "the good checkpoint was replaced");
    assert_eq!(epochs_in(&out), 1);
    std::fs::remove_dir_all(&base).unwrap();
}

/// Two runs into one directory at once: the second is refused, naming the first's pid.
#[test]
fn a_second_run_into_a_locked_directory_is_refused() {
    let (base, data) = with_data("g-lock", 2000);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    let mut long = quick(d, o);
    long[5] = "200";
    let mut first =
        Command::new(bin()).args(&long).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until the first run holds the lock (it writes its pid into the lock file).
    let lock = out.join(".lock");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(start.elapsed().as_secs() < 60, "the first run never locked its directory");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = run(&quick(d, o));
    let _ = first.kill();
    let _ = first.wait();
    assert_error(&second, 1, &["in use by another run", &format!("(pid {})", first.id())]);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A closed stdout (`| head -1`) neither panics nor stops training: every epoch is saved.
#[test]
fn a_closed_stdout_does_not_stop_training() {
    let (base, data) = with_data("g-stdout", 20);
    let out = base.join("out");
    let mut args = quick(data.to_str().unwrap(), out.to_str().unwrap());
    args[5] = "3";
    let mut child =
        Command::new(bin()).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success() && !err.contains("panicked"), "{err}");
    assert_eq!(epochs_in(&out), 3);
    std::fs::remove_dir_all(&base).unwrap();
}

/// Sizes that cannot fit are refused before anything is allocated, naming the flag.
#[test]
fn sizes_that_cannot_fit_are_refused() {
    let (base, data) = with_data("g-sizes", 20);
    let (d, o) = (data.to_str().unwrap(), base.join("out"));
    for (flag, value) in [
        ("--hidden", "1000000000"),
        ("--latent", "1000000000"),
        ("--samples", "1000000000"),
        ("--hidden", "1000000000000000000"),
    ] {
        let mut args = quick(d, o.to_str().unwrap());
        args.extend([flag, value]);
        // quick() sets --hidden 8 and --latent 2; a repeated list flag appends, so give
        // the size flags on their own.
        let args: Vec<&str> =
            args.chunks(2).filter(|kv| kv[0] != flag || kv[1] == value).flatten().copied().collect();
        assert_error(&run(&args), 2, &[&format!("{flag} {value} would need about"), "of memory"]);
    }
    // The dense layers after the convolutions count, and the flag that asks for the most
    // is the one named.
    let mut conv = quick(d, o.to_str().unwrap());
    conv.extend(["--arch", "conv", "--conv-channels", "1000000,1000000"]);
    assert_error(&run(&conv), 2, &["--conv-channels 1000000,1000000 would need about"]);
    // An address-space limit (`ulimit -v`) counts like the machine's memory: under 1 GiB a
    // model of a few GB is refused before it starts, instead of aborting, and a small one
    // runs (on pools of 1 and 8 threads, whose stacks and arenas take address space too).
    #[cfg(unix)]
    for threads in ["1", "8"] {
        let limited = |args: &[&str]| {
            let line = "ulimit -v 1048576 && exec \"$0\" \"$@\"";
            Command::new("sh").arg("-c").arg(line).arg(common::bin()).args(args).output().unwrap()
        };
        let mut small = quick(d, o.to_str().unwrap());
        small.extend(["--threads", threads, "--force"]);
        let out = limited(&small);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        small[7] = "100000"; // --hidden
        let out = limited(&small);
        assert_error(&out, 2, &["--hidden 100000 would need about", "the address-space limit (ulimit -v)"]);
    }
    std::fs::remove_dir_all(&base).unwrap();
}

/// Decompression is bounded by the header: a small .gz whose header claims one image but
/// inflates to far more is refused as trailing data; multi-member gzip streams read whole.
#[test]
fn decompression_reads_what_the_header_announces() {
    let (base, data) = with_data("g-gzip", 20);
    let d = data.to_str().unwrap();
    let o = base.join("out");
    // A bomb: one image announced, 64 MiB of zeros after it.
    let mut bomb = idx(&[1, 28, 28], &[0; 784]);
    bomb.resize(bomb.len() + (64 << 20), 0);
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), gz(&bomb)).unwrap();
    assert_error(&run(&quick(d, o.to_str().unwrap())), 1, &["train-images-idx3-ubyte.gz", "trailing data"]);
    // Two gzip members that together make the file: read whole.
    write_data(&data, 20, 28);
    let raw = idx(&[20, 28, 28], &(0..20 * 784).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let (head, tail) = raw.split_at(1000);
    let mut two = gz(head);
    two.extend(gz(tail));
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), two).unwrap();
    ok(&quick(d, o.to_str().unwrap()));
    std::fs::remove_dir_all(&base).unwrap();
}

/// Empty data sets, non-files where files belong, and a `--data` that is a file each get
/// one clear line, at once (a FIFO is never opened for a blocking read).
#[test]
fn empty_sets_and_non_files_are_refused() {
    let base = temp("g-empty");
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let o = base.join("out");
    let o = o.to_str().unwrap();
    let d = data.to_str().unwrap();
    write_data(&data, 20, 28);
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), gz(&idx(&[0, 28, 28], &[]))).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte.gz"), gz(&idx(&[0], &[]))).unwrap();
    assert_error(&run(&quick(d, o)), 1, &["train-images-idx3-ubyte.gz", "holds no images"]);
    write_data(&data, 20, 28);
    std::fs::remove_file(data.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte"), idx(&[0, 28, 28], &[])).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), idx(&[0], &[])).unwrap();
    assert_error(&run(&quick(d, o)), 1, &["t10k-images-idx3-ubyte", "holds no images"]);
    // A FIFO where the test labels belong.
    write_data(&data, 20, 28);
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let fifo = data.join("t10k-labels-idx1-ubyte");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert_error(&run(&quick(d, o)), 1, &["t10k-labels-idx1-ubyte", "not a regular file"]);
    // --resume naming a FIFO, and --data naming a file.
    let mut r = quick(d, o);
    r.extend(["--resume", fifo.to_str().unwrap()]);
    assert_error(&run(&r), 2, &["is not a regular file"]);
    let file = data.join("train-images-idx3-ubyte.gz");
    assert_error(&run(&quick(file.to_str().unwrap(), o)), 1, &["not a directory"]);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A damaged checkpoint is refused naming the file: a flipped bit fails the checksum, and a
/// writer killed mid-save leaves a temporary file that the next run removes.
#[test]
fn damaged_checkpoints_and_left_overs() {
    let (base, data) = with_data("g-damaged", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    ok(&quick(d, o));
    let ckpt = out.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let at = bytes.len() - 7;
    bytes[at] ^= 0x04;
    std::fs::write(&ckpt, &bytes).unwrap();
    let mut more = quick(d, o);
    more[5] = "2";
    assert_error(&run(&more), 1, &["checkpoint.safetensors", "does not match its checksum"]);
    // A left-over temporary file from a killed writer is removed by the next run.
    std::fs::remove_file(&ckpt).unwrap();
    let stale = out.join(".checkpoint.safetensors.tmp-99999999");
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    let said = ok(&quick(d, o));
    assert!(said.contains("removed 1 temporary file"), "{said}");
    assert!(!stale.exists());
    std::fs::remove_dir_all(&base).unwrap();
}

/// Rewrites a safetensors file's metadata with `edit`, leaving its tensors' bytes as they are.
fn edit_metadata(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header["__metadata__"].as_object_mut().unwrap());
    let mut text = header.to_string().into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// Metadata that shapes a run is checked: an edited step count fails the checksum, which
/// covers the metadata; in a file of the older format, whose checksum covers tensors only
/// (here, one written before checksums), a step count the epochs cannot have is refused.
#[test]
fn edited_metadata_is_refused() {
    let (base, data) = with_data("g-metadata", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    ok(&quick(d, o));
    let ckpt = out.join("checkpoint.safetensors");
    let good = std::fs::read(&ckpt).unwrap();
    let mut more = quick(d, o);
    more[5] = "2";
    edit_metadata(&ckpt, |m| _ = m.insert("optimizer_steps".into(), "0".into()));
    assert_error(&run(&more), 1, &["checkpoint.safetensors", "does not match its checksum", "edited"]);
    std::fs::write(&ckpt, &good).unwrap();
    edit_metadata(&ckpt, |m| {
        m.insert("format".into(), "vae-from-scratch checkpoint v2".into());
        m.remove("checksum");
        m.insert("optimizer_steps".into(), u64::MAX.to_string().into());
    });
    assert_error(
        &run(&more),
        1,
        &["checkpoint.safetensors", "says 18446744073709551615 optimizer steps after 1 epochs", "edited"],
    );
    // The same older file with its true count continues.
    edit_metadata(&ckpt, |m| _ = m.insert("optimizer_steps".into(), "1".into()));
    let said = ok(&more);
    assert!(said.contains("epoch 2 "), "{said}");
    std::fs::remove_dir_all(&base).unwrap();
}

/// A symbolic link where the run writes a file of its own is never followed: a `.lock`
/// that links to a user's file is refused, naming it, and the user's file is untouched.
#[cfg(unix)]
#[test]
fn links_where_the_run_writes_are_not_followed() {
    let (base, data) = with_data("g-links", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    std::fs::create_dir_all(&out).unwrap();
    let precious = base.join("precious.txt");
    std::fs::write(&precious, b"the user's own words").unwrap();
    std::os::unix::fs::symlink(&precious, out.join(".lock")).unwrap();
    assert_error(&run(&quick(d, out.to_str().unwrap())), 1, &[".lock", "symbolic link"]);
    assert_eq!(std::fs::read(&precious).unwrap(), b"the user's own words");
    assert!(!out.join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&base).unwrap();
}

/// An atomic write replaces a link planted at its temporary name instead of writing
/// through it.
#[cfg(unix)]
#[test]
fn an_atomic_write_does_not_follow_a_link_at_its_temporary_name() {
    let base = temp("g-tmp-link");
    let precious = base.join("precious.txt");
    std::fs::write(&precious, b"the user's own words").unwrap();
    let target = base.join("metrics.csv");
    let tmp = base.join(format!(".metrics.csv.tmp-{}", std::process::id()));
    std::os::unix::fs::symlink(&precious, &tmp).unwrap();
    vae::io::atomic_write(&target, b"epoch\n").unwrap();
    assert_eq!(std::fs::read(&precious).unwrap(), b"the user's own words");
    assert_eq!(std::fs::read(&target).unwrap(), b"epoch\n");
    assert!(std::fs::symlink_metadata(&tmp).is_err(), "the link is gone");
    std::fs::remove_dir_all(&base).unwrap();
}

/// An optimizer state that overflows is not saved: the run stops naming the tensor, and
/// the directory holds no checkpoint that every later command would refuse, so a sane
/// rerun goes ahead.
#[test]
fn an_overflowing_optimizer_state_is_not_saved() {
    let (base, data) = with_data("g-adam-inf", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    let mut wild = quick(d, o);
    wild.extend(["--weight-decay", "1e30"]);
    assert_error(&run(&wild), 1, &["optimizer.exp_avg_sq.", "non-finite", "no checkpoint was written"]);
    assert!(!out.join("checkpoint.safetensors").exists());
    ok(&quick(d, o));
    assert_eq!(epochs_in(&out), 1);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A run stopped between its checkpoint and the files that follow it (the stage checkpoint,
/// `metrics.csv`, `curves.png`) has them written again by the next run, even when nothing
/// is left to train.
#[test]
fn files_that_follow_a_checkpoint_are_completed_by_the_next_run() {
    let (base, data) = with_data("g-complete", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let mut args = quick(d, out.to_str().unwrap());
    args.extend(["--lr-schedule", "burda"]);
    ok(&args);
    let stage = out.join("checkpoint-stage0.safetensors");
    let (ckpt, metrics) = (std::fs::read(&stage).unwrap(), std::fs::read(out.join("metrics.csv")).unwrap());
    // As a kill right after the checkpoint's rename leaves them.
    std::fs::remove_file(&stage).unwrap();
    std::fs::remove_file(out.join("curves.png")).unwrap();
    let header = String::from_utf8_lossy(&metrics).lines().next().unwrap().to_string() + "\n";
    std::fs::write(out.join("metrics.csv"), header).unwrap();
    let said = ok(&args);
    assert!(said.contains("nothing left to train"), "{said}");
    // The same tensors (the header's metadata may list its keys in another order).
    let tensors = |b: &[u8]| b[8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize..].to_vec();
    assert!(tensors(&std::fs::read(&stage).unwrap()) == tensors(&ckpt), "another stage checkpoint");
    assert_eq!(std::fs::read(out.join("metrics.csv")).unwrap(), metrics);
    assert!(out.join("curves.png").exists());
    std::fs::remove_dir_all(&base).unwrap();
}

/// `--force` starts over: no file of the previous run (its 2-D latent images, its stage
/// checkpoints) stays beside the new run's, and files that are not the run's stay.
#[test]
fn force_leaves_no_file_of_the_previous_run() {
    let (base, data) = with_data("g-force-clean", 20);
    let (d, out) = (data.to_str().unwrap(), base.join("out"));
    let o = out.to_str().unwrap();
    let mut first = quick(d, o);
    first.extend(["--lr-schedule", "burda"]);
    ok(&first);
    for f in ["manifold.png", "latent_scatter.png", "checkpoint-stage0.safetensors"] {
        assert!(out.join(f).exists(), "{f}");
    }
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let mut other = quick(d, o);
    other[9] = "3"; // --latent 3: no manifold or scatter
    other.push("--force");
    let said = ok(&other);
    assert!(said.contains("removed"), "{said}");
    for f in ["manifold.png", "latent_scatter.png", "checkpoint-stage0.safetensors"] {
        assert!(!out.join(f).exists(), "{f} of the previous run is still there");
    }
    assert!(out.join("checkpoint.safetensors").exists() && out.join("samples.png").exists());
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    // --force resuming from the directory's own checkpoint, nothing left to train: the
    // checkpoint is the run's state and stays.
    let ckpt = out.join("checkpoint.safetensors");
    other.extend(["--resume", ckpt.to_str().unwrap()]);
    let said = ok(&other);
    assert!(said.contains("nothing left to train"), "{said}");
    assert!(ckpt.exists() && out.join("metrics.csv").exists());
    std::fs::remove_dir_all(&base).unwrap();
}

/// The other examples check where their outputs go before any work: a file where a
/// directory goes, or a directory where a file goes, is one error line naming it, and
/// nothing is computed first.
#[test]
fn examples_check_their_destination_before_the_work() {
    let (base, data) = with_data("g-dest", 20);
    let d = data.to_str().unwrap();
    let file = base.join("a-file");
    std::fs::write(&file, b"mine").unwrap();
    let f = file.to_str().unwrap();
    let b = base.to_str().unwrap();
    let sub = format!("{f}/sub");
    for (name, args, says) in [
        ("mixture_em", vec!["--data", d, "--out", f], "not a directory"),
        (
            "mnist_vae",
            vec!["--data", d, "--out", &sub],
            "a-file: not a directory, where the outputs' directory",
        ),
        ("mnist_gan", vec!["--data", d, "--out", f], "not a directory"),
        ("gradient_variance", vec!["--data", d, "--out", f], "not a directory"),
        ("denoising_autoencoder", vec!["--data", d, "--out", b], "a directory, where the output file goes"),
    ] {
        let out = Command::new(common::example(name)).args(&args).output().unwrap();
        assert_error(&out, 1, &[says]);
        assert!(out.stdout.is_empty(), "{name} worked first: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
    std::fs::remove_dir_all(&base).unwrap();
}

/// Every example checks its sizes before the work, the same way: memory the settings would
/// need beyond what this process may use, and an evaluation that would take longer than
/// 30 days, are refused in one line naming the flag (exit 2).
#[test]
fn examples_check_their_sizes_before_the_work() {
    let (base, data) = with_data("g-example-sizes", 20);
    let d = data.to_str().unwrap();
    let o = base.join("out");
    let o = o.to_str().unwrap();
    for (name, args, says) in [
        (
            "mnist_gan",
            vec!["--data", d, "--out", o, "--noise", "100000000000"],
            "--noise 100000000000 would need",
        ),
        (
            "gradient_variance",
            vec!["--data", d, "--out", o, "--max-samples", "1000000000000"],
            "--max-samples 1000000000000 would need",
        ),
        (
            "gradient_variance",
            vec!["--data", d, "--out", o, "--repeats", "10000000000"],
            "--repeats 10000000000 would need",
        ),
        ("step_timer", vec!["--data", d, "--k", "100000000000"], "--samples 100000000000 would need"),
        (
            "step_timer",
            vec!["--data", d, "--eval-k", "100000000000"],
            "--eval-k 100000000000 would take about",
        ),
        (
            "mnist_vae",
            vec!["--data", d, "--out", o, "--iwae-k", "100000000000000"],
            "--iwae-k 100000000000000 would take about",
        ),
    ] {
        let out = Command::new(common::example(name)).args(&args).output().unwrap();
        assert_error(&out, 2, &[says]);
        assert!(out.stdout.is_empty(), "{name} worked first: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(!base.join("out").join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&base).unwrap();
}
