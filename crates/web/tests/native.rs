//! The page's engine calls, natively: the shipped checkpoint's decoded pixels against
//! `web/test/reference.json` (which the browser test holds the page to), the refusals the
//! page shows, and the in-tab trainer against the library's own epoch.

use std::path::{Path, PathBuf};

use vae::checkpoint;
use vae::config::{ConvNet, TrainConfig, VaeConfig};
use vae::data::Dataset;
use vae::train::Trainer;
use vae_web::{Digits, Explorer, TabTrainer};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn shipped() -> Vec<u8> {
    std::fs::read(repo("web/model/mnist-2d.safetensors")).unwrap()
}

fn test_digits() -> Digits {
    let read = |f: &str| std::fs::read(repo(&format!("web/data/{f}"))).unwrap();
    Digits::parse(
        "the test digits",
        &read("t10k-2000-images-idx3-ubyte.gz"),
        &read("t10k-2000-labels-idx1-ubyte.gz"),
    )
    .unwrap()
}

/// The points the reference holds; `UPDATE_WEB_REFERENCE=1` rewrites the file from this
/// build.
const POINTS: [[f32; 2]; 4] = [[0.0, 0.0], [1.5, -0.5], [-2.0, 2.0], [0.25, 3.0]];

#[test]
fn the_shipped_model_decodes_to_the_reference_pixels() {
    let explorer = Explorer::load("mnist-2d.safetensors", &shipped()).unwrap();
    let file = repo("web/test/reference.json");
    let decoded: Vec<Vec<f32>> = POINTS.iter().map(|p| explorer.decode_native(p).unwrap()).collect();
    if std::env::var_os("UPDATE_WEB_REFERENCE").is_some() {
        let points: Vec<_> = POINTS
            .iter()
            .zip(&decoded)
            .map(|(p, px)| serde_json::json!({ "point": p, "pixels": px }))
            .collect();
        std::fs::write(&file, serde_json::to_string(&serde_json::json!({ "points": points })).unwrap())
            .unwrap();
    }
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let stored = stored["points"].as_array().unwrap();
    assert_eq!(stored.len(), POINTS.len());
    for ((entry, p), px) in stored.iter().zip(&POINTS).zip(&decoded) {
        let point: Vec<f32> = serde_json::from_value(entry["point"].clone()).unwrap();
        let pixels: Vec<f32> = serde_json::from_value(entry["pixels"].clone()).unwrap();
        assert_eq!(point, p);
        assert_eq!(pixels.len(), 784);
        let worst = pixels.iter().zip(px).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= 1e-6, "at {p:?} the native decoder is {worst} from the reference");
    }
    // The points are spread: the reference checks different images, not one.
    assert!(decoded[0].iter().zip(&decoded[2]).any(|(a, b)| (a - b).abs() > 0.5));
}

#[test]
fn the_test_digits_spread_over_the_plane_by_class() {
    let digits = test_digits();
    assert_eq!((digits.count(), digits.dim(), digits.side()), (2000, 784, 28));
    let explorer = Explorer::load("mnist-2d.safetensors", &shipped()).unwrap();
    let codes = explorer.encode_native(&digits.pixels(2000)).unwrap();
    let labels = digits.labels();
    // A digit's nearest other code shares its label for over half the digits (chance: 10 %).
    let same = (0..2000)
        .filter(|&i| {
            let d = |j: usize| {
                (codes[2 * i] - codes[2 * j]).powi(2) + (codes[2 * i + 1] - codes[2 * j + 1]).powi(2)
            };
            let j = (0..2000).filter(|&j| j != i).min_by(|&a, &b| d(a).total_cmp(&d(b))).unwrap();
            labels[j] == labels[i]
        })
        .count();
    assert!(same > 1000, "{same} of 2000 nearest neighbours share the label");
}

#[test]
fn bad_input_is_refused_with_a_message() {
    // Another latent size, named with its size.
    let config = TrainConfig {
        model: VaeConfig { hidden: vec![8], latent: 3, ..VaeConfig::default() },
        ..TrainConfig::default()
    };
    let bytes = checkpoint::to_bytes(&Trainer::new(config)).unwrap();
    let err = Explorer::load("three.safetensors", &bytes).err().unwrap();
    assert!(err.contains("latent space has 3 dimensions; this page shows 2"), "{err}");
    // Not a checkpoint; a damaged one.
    let err = Explorer::load("noise", &[7u8; 100]).err().unwrap();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let mut damaged = shipped();
    let at = damaged.len() - 100;
    damaged[at] ^= 0x40;
    let err = Explorer::load("damaged", &damaged).err().unwrap();
    assert!(err.contains("does not match its checksum"), "{err}");
    // Calls with the wrong number of values.
    let explorer = Explorer::load("mnist-2d.safetensors", &shipped()).unwrap();
    assert!(explorer.decode_native(&[0.0, 1.0, 2.0]).is_err());
    assert!(explorer.decode_native(&[f32::NAN, 0.0]).is_err());
    assert!(explorer.encode_native(&[0.5; 785]).is_err());
    assert!(explorer.encode_native(&[2.0; 784]).is_err());
    // Digits that are not IDX files, or disagree.
    let err = Digits::parse("x", &[1, 2, 3], &[]).err().unwrap();
    assert!(err.starts_with("x: the image file is not readable"), "{err}");
    let images = [&[0u8, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1][..], &[9]].concat();
    let labels = [0u8, 0, 8, 1, 0, 0, 0, 2, 4, 5];
    let err = Digits::parse("x", &images, &labels).err().unwrap();
    assert!(err.contains("2 labels for 1 images"), "{err}");
}

#[test]
fn the_tab_trainer_runs_the_library_epoch() {
    let digits = test_digits();
    let mut tab = TabTrainer::create(&digits, 16, 100, 1e-3, 7).unwrap();
    let mut ended = Vec::new();
    for _ in 0..45 {
        ended.push(tab.train_native(1).unwrap());
    }
    // 2,000 images in batches of 100: epochs end at the 20th and 40th step.
    let ends: Vec<usize> = ended.iter().enumerate().filter(|(_, &e)| e).map(|(i, _)| i + 1).collect();
    assert_eq!(ends, [20, 40]);
    assert_eq!(tab.epoch(), 2);
    let losses = tab.losses();
    assert!(losses[1] < losses[0], "{losses:?}");
    // The same two epochs by the library's own loop give the same losses, bit for bit.
    let config = TrainConfig {
        model: VaeConfig { hidden: vec![16], latent: 2, ..VaeConfig::default() },
        batch_size: 100,
        seed: 7,
        ..TrainConfig::default()
    };
    let read = |f: &str| repo(&format!("web/data/{f}"));
    let data =
        Dataset::load(&read("t10k-2000-images-idx3-ubyte.gz"), &read("t10k-2000-labels-idx1-ubyte.gz"))
            .unwrap();
    let mut trainer = Trainer::new(config);
    for &loss in &losses {
        assert_eq!(trainer.train_epoch(&data, |_| {}).unwrap().to_bits(), loss.to_bits());
        trainer.epoch += 1;
    }
    assert!(TabTrainer::create(&digits, 0, 100, 1e-3, 7).is_err());
}

#[test]
fn a_convolutional_checkpoint_loads_and_maps_both_ways() {
    let model = VaeConfig {
        hidden: vec![],
        latent: 2,
        conv: Some(ConvNet { side: 28, channels: vec![4, 8] }).into(),
        ..VaeConfig::default()
    };
    let bytes = checkpoint::to_bytes(&Trainer::new(TrainConfig { model, ..TrainConfig::default() })).unwrap();
    let explorer = Explorer::load("conv.safetensors", &bytes).unwrap();
    assert_eq!(explorer.input(), 784);
    let codes = explorer.encode_native(&test_digits().pixels(3)).unwrap();
    assert_eq!(codes.len(), 6);
    let pixels = explorer.decode_native(&codes).unwrap();
    assert_eq!(pixels.len(), 3 * 784);
    assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
}
