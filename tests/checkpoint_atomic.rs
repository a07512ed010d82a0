//! A process killed at any moment while saving leaves the previous checkpoint loadable.
//!
//! The test re-runs its own binary as a writer that saves checkpoints in a loop, kills it
//! after a random delay, and loads what is on disk, many times over.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use vae::checkpoint;
use vae::train::{TrainConfig, Trainer};

const WRITER: &str = "VAE_TEST_CHECKPOINT_WRITER";
const NAME: &str = "killing_a_writer_mid_save_leaves_a_loadable_checkpoint";

#[test]
fn killing_a_writer_mid_save_leaves_a_loadable_checkpoint() {
    let config = TrainConfig::default(); // 650k parameters: each save writes about 7.8 MB
    if let Ok(path) = std::env::var(WRITER) {
        // The writer: save forever, changing the step count each time.
        let mut trainer = Trainer::new(config);
        loop {
            trainer.optimizer.steps += 1;
            checkpoint::save(&PathBuf::from(&path), &trainer).unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("vae-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.safetensors");
    checkpoint::save(&path, &Trainer::new(config.clone())).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut last_steps = 0;
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
            .env(WRITER, &path)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let (loaded, _) = checkpoint::load(&path, &config).unwrap_or_else(|e| panic!("round {round}: {e}"));
        last_steps = last_steps.max(loaded.optimizer.steps);
    }
    // The writer did get saves through between kills (so kills landed among saves).
    assert!(last_steps > 0, "the writer never completed a save");
    std::fs::remove_dir_all(&dir).unwrap();
}
