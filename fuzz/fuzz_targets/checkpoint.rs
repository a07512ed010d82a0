//! The checkpoint loader on arbitrary bytes: a trainer or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vae::model::VaeConfig;
use vae::train::TrainConfig;

fuzz_target!(|data: &[u8]| {
    // The configuration of the seed in corpus/checkpoint.
    let expected =
        TrainConfig { model: VaeConfig { input: 4, hidden: vec![3], latent: 2, ..VaeConfig::default() }, ..TrainConfig::default() };
    if let Ok((trainer, _)) = vae::checkpoint::from_bytes(Path::new("fuzz-input"), data, &expected) {
        assert_eq!(trainer.history.len(), trainer.epoch);
    }
});
