//! Helpers shared by the tests that drive the example binaries: building them, temporary
//! directories, tiny IDX data sets, and the one-error-line check.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The `mnist_vae` example binary (see [`example`]).
pub fn bin() -> PathBuf {
    example("mnist_vae")
}

/// An example binary, built (once per test run and example) with the profile of this test
/// binary so that it is never stale, even when only this test target was asked for.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--example", name]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cargo.arg("--release");
    }
    assert!(cargo.status().unwrap().success(), "building the example {name} failed");
    let path = dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    built.push((name.to_string(), path.clone()));
    path
}

pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vae-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A tiny valid data set: `n_train` and 10 test images of `side`×`side`.
pub fn write_data(dir: &Path, n_train: u32, side: u32) {
    let px = (side * side) as usize;
    let image = |n: u32| {
        idx(&[n, side, side], &(0..n as usize * px).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>())
    };
    let labels = |n: u32| idx(&[n], &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&image(n_train))).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&labels(n_train))).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), image(10)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels(10)).unwrap();
}

/// A change that breaks a valid data directory.
pub type Corruption = Box<dyn Fn(&Path)>;

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Asserts a failure with `code` and a single stderr line containing every `needle`.
pub fn assert_error(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "panic: {err}");
    if code == 1 {
        assert_eq!(err.trim_end().lines().count(), 1, "more than one line: {err}");
    }
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

pub fn quick<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["--data", data, "--out", out, "--epochs", "1", "--hidden", "8", "--latent", "2"]
}

/// A fresh temporary directory `name` with a valid 28×28 data set of `n_train` training
/// images in its `data/`; returns both paths.
pub fn with_data(name: &str, n_train: u32) -> (PathBuf, PathBuf) {
    let base = temp(name);
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_data(&data, n_train, 28);
    (base, data)
}
