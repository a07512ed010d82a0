//! Checkpoints in safetensors: the parameters under PyTorch `state_dict` names
//! (`fc1.weight` `[400, 784]`, …), the optimizer state under `optimizer.{slot}.{name}`, and
//! in the metadata the run's configuration, the epochs done, the optimizer's step count and
//! the metrics so far. Random streams are derived from the seed and the epoch (see
//! [`crate::train::stream_rng`]), so this is all a resumed run needs to continue exactly.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};
use serde_json::{json, Value};
use tensor::Tensor;

use crate::error::{Result, VaeError};
use crate::io::atomic_write;
use crate::model::Vae;
use crate::optim::Optimizer;
use crate::train::{EpochMetrics, TrainConfig, Trainer};

/// The metadata value naming this file format. v3's checksum covers the tensors and every
/// other metadata entry (configuration, epochs, optimizer steps, history).
const FORMAT: &str = "vae-from-scratch checkpoint v3";
/// The format whose checksum covers the tensors only; read, never written.
const FORMAT_V2: &str = "vae-from-scratch checkpoint v2";
/// The format before the configuration moved into one serialized struct.
const FORMAT_V1: &str = "vae-from-scratch checkpoint v1";

/// A parameter or optimizer tensor as safetensors serializes it: its little-endian bytes
/// are made when the file's buffer takes them, one tensor at a time, so saving holds one
/// copy of the state (the file) besides the trainer's.
struct F32View<'a>(&'a Tensor<f32>);

impl safetensors::View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        le_bytes(self.0).into()
    }
    fn data_len(&self) -> usize {
        self.0.len() * 4
    }
}

fn le_bytes(t: &Tensor<f32>) -> Vec<u8> {
    t.to_vec().iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serializes a trainer's state to safetensors bytes. A state holding a non-finite value
/// (a parameter or the optimizer's state) is an error naming the tensor: loading refuses
/// such a checkpoint, so saving one would leave a run that can neither continue nor be
/// evaluated.
pub fn to_bytes(trainer: &Trainer) -> Result<Vec<u8>> {
    let params = &trainer.model.params;
    let mut named: Vec<(String, &Tensor<f32>)> = params
        .names()
        .iter()
        .cloned()
        .zip(params.tensors().iter())
        .chain(trainer.optimizer.named_state(params).map(|(name, t)| (format!("optimizer.{name}"), t)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sum = Checksum::new();
    for (name, t) in &named {
        let values = t.to_vec();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(VaeError::NonFinite(format!(
                "tensor \"{name}\" holds a non-finite value ({}) at element {i}",
                values[i]
            )));
        }
        sum.tensor(name, &values.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
    }
    let history: Vec<Value> = trainer
        .history
        .iter()
        .map(|m| json!([m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds]))
        .collect();
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("config".to_string(), trainer.config.to_json().to_string()),
        ("epoch".to_string(), trainer.epoch.to_string()),
        ("optimizer_steps".to_string(), trainer.optimizer.steps.to_string()),
        ("history".to_string(), Value::Array(history).to_string()),
    ]);
    sum.metadata(&meta);
    meta.insert("checksum".to_string(), sum.finish());
    let views = named.into_iter().map(|(n, t)| (n, F32View(t)));
    // Only a bug (mismatched sizes) could make this fail.
    Ok(safetensors::serialize(views, Some(meta)).expect("tensor views agree with their shapes"))
}

/// Writes a trainer's state to `path` atomically (a temporary file, fsync, rename), so a
/// crash at any moment leaves the previous checkpoint intact.
pub fn save(path: &Path, trainer: &Trainer) -> Result<()> {
    atomic_write(path, &to_bytes(trainer)?)
}

/// The checksum of a checkpoint, `crc32:xxxxxxxx`: CRC-32 over every tensor's name, length
/// and bytes in name order, then (from format v3) every other metadata entry's key and value
/// in key order.
struct Checksum(crc32fast::Hasher);

impl Checksum {
    fn new() -> Self {
        Checksum(crc32fast::Hasher::new())
    }

    /// Adds a tensor; tensors must come in name order.
    fn tensor(&mut self, name: &str, bytes: &[u8]) {
        self.0.update(name.as_bytes());
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Adds every metadata entry but the checksum itself.
    fn metadata(&mut self, meta: &HashMap<String, String>) {
        let mut entries: Vec<(&String, &String)> = meta.iter().filter(|(k, _)| *k != "checksum").collect();
        entries.sort();
        for (key, value) in entries {
            for part in [key, value] {
                self.0.update(&(part.len() as u64).to_le_bytes());
                self.0.update(part.as_bytes());
            }
        }
    }

    fn finish(self) -> String {
        format!("crc32:{:08x}", self.0.finalize())
    }
}

/// Reads a checkpoint file, refusing anything but a regular file before opening it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::io::require_regular_file(path)?;
    std::fs::read(path).map_err(|e| VaeError::io(path, e))
}

/// A checkpoint's run configuration and the number of epochs it holds, from the bytes of
/// the file (`path` only names it in errors).
pub fn read_meta(path: &Path, bytes: &[u8]) -> Result<(TrainConfig, usize)> {
    let (_, (config, epochs, ..)) = parse_meta(path, bytes)?;
    Ok((config, epochs))
}

/// Configuration, epochs, optimizer steps, history, and all the metadata's entries.
type Meta = (TrainConfig, usize, u64, Vec<EpochMetrics>, HashMap<String, String>);

fn parse_meta<'b>(path: &Path, bytes: &'b [u8]) -> Result<(SafeTensors<'b>, Meta)> {
    let bad = |msg: String| VaeError::Checkpoint { path: path.to_path_buf(), msg };
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) == Some(FORMAT_V1) {
        return Err(bad(
            "written by an earlier version of this program (format v1), whose configuration this version does not read; train afresh".into(),
        ));
    }
    if !matches!(meta.get("format").map(String::as_str), Some(FORMAT | FORMAT_V2)) {
        return Err(bad("not a checkpoint of this program (no or unknown \"format\" metadata)".into()));
    }
    let get = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata lacks \"{k}\"")));
    let config = serde_json::from_str::<Value>(get("config")?)
        .and_then(|v| TrainConfig::from_json(&v))
        .map_err(|e| bad(format!("unreadable \"config\" metadata: {e}")))?;
    let epoch = get("epoch")?.parse::<usize>().map_err(|_| bad("bad \"epoch\" metadata".into()))?;
    let steps =
        get("optimizer_steps")?.parse::<u64>().map_err(|_| bad("bad \"optimizer_steps\" metadata".into()))?;
    let history: Vec<EpochMetrics> = serde_json::from_str::<Vec<(usize, f64, f64, f64)>>(get("history")?)
        .map_err(|_| bad("bad \"history\" metadata".into()))?
        .into_iter()
        .map(|(epoch, train_neg_elbo, test_neg_elbo, epoch_seconds)| EpochMetrics {
            epoch,
            train_neg_elbo,
            test_neg_elbo,
            epoch_seconds,
        })
        .collect();
    if history.len() != epoch {
        return Err(bad(format!("metadata says {epoch} epochs but holds metrics for {}", history.len())));
    }
    Ok((st, (config, epoch, steps, history, meta)))
}

/// Loads a checkpoint into a trainer. Refuses, with a message naming the difference, a file
/// that is not a checkpoint, whose tensors' names, shapes or dtypes do not match its model,
/// whose tensors hold a NaN or an infinity or fail the stored checksum, or whose run
/// configuration differs from `expected` (other than the number of epochs); the trainer
/// takes `expected`'s number of epochs. Also says whether a checksum was there to verify
/// (format v2 checkpoints written before checksums load unverified; v3 ones must have one).
pub fn load(path: &Path, expected: &TrainConfig) -> Result<(Trainer, bool)> {
    from_bytes(path, &read_file(path)?, expected)
}

/// [`load`] from the bytes of a checkpoint file; `path` only names it in errors. Any input
/// gives a trainer or an error, never a panic (the fuzz target `checkpoint` checks this).
pub fn from_bytes(path: &Path, bytes: &[u8], expected: &TrainConfig) -> Result<(Trainer, bool)> {
    let bad = |msg: String| VaeError::Checkpoint { path: path.to_path_buf(), msg };
    let (st, (config, epoch, steps, history, meta)) = parse_meta(path, bytes)?;
    let v3 = meta.get("format").map(String::as_str) == Some(FORMAT);
    let stored_sum = meta.get("checksum");
    match stored_sum {
        None if v3 => return Err(bad("metadata lacks \"checksum\"".into())),
        None => {}
        Some(stored) => {
            let mut names = st.names();
            names.sort();
            let mut sum = Checksum::new();
            for name in names {
                if let Ok(view) = st.tensor(name) {
                    sum.tensor(name, view.data());
                }
            }
            if v3 {
                sum.metadata(&meta);
            }
            let actual = sum.finish();
            if &actual != stored {
                return Err(bad(format!(
                    "tensor data or metadata does not match its checksum ({actual}, stored {stored}): the file is damaged or was edited"
                )));
            }
        }
    }
    expected
        .check_same_run(&config)
        .map_err(|d| bad(format!("it was made with {d}; pass the same flags")))?;
    config.validate().map_err(|e| bad(format!("stored configuration is invalid: {e}")))?;
    let config = TrainConfig { epochs: expected.epochs, ..config };
    // Every tensor the model and optimizer ask for, by name, checked against the shape
    // they expect; no weight is drawn at random first.
    let mut used = HashSet::new();
    let mut take = |name: &str, shape: &[usize]| -> Result<Tensor<f32>> {
        let view = st.tensor(name).map_err(|_| bad(format!("missing tensor \"{name}\"")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor \"{name}\" has dtype {:?}, expected F32", view.dtype())));
        }
        if view.shape() != shape {
            return Err(bad(format!("tensor \"{name}\" has shape {:?}, expected {shape:?}", view.shape())));
        }
        used.insert(name.to_string());
        let data: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "tensor \"{name}\" holds a non-finite value ({}) at element {i}",
                data[i]
            )));
        }
        Ok(Tensor::from_vec(data, shape))
    };
    let model = Vae::build(config.model.clone(), |name, shape, _| take(name, shape))?;
    let mut optimizer = Optimizer::new(config.optimizer, &model.params);
    for (s, slot) in config.optimizer.kind.slots().iter().enumerate() {
        for (i, (name, p)) in model.params.names().iter().zip(model.params.tensors()).enumerate() {
            *optimizer.state_mut(s, i) = take(&format!("optimizer.{slot}.{name}"), p.shape())?;
        }
    }
    if let Some(extra) = st.names().into_iter().find(|n| !used.contains(*n)) {
        return Err(bad(format!("unexpected tensor \"{extra}\" for this model")));
    }
    optimizer.steps = steps;
    Ok((Trainer::from_parts(config, model, optimizer, epoch, history), stored_sum.is_some()))
}

#[cfg(test)]
mod tests {
    use safetensors::tensor::TensorView;

    use super::*;
    use crate::model::VaeConfig;

    fn small() -> TrainConfig {
        TrainConfig {
            model: VaeConfig { input: 4, hidden: vec![3], latent: 2, ..VaeConfig::default() },
            ..TrainConfig::default()
        }
    }

    /// Re-serializes a checkpoint after `edit` changes its list of (name, dtype, shape, bytes).
    fn tampered(edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
        tampered_with_meta(edit, |_| {})
    }

    /// [`tampered`], and `edit_meta` changes the metadata; the result carries a checksum of
    /// what it holds, so each test reaches the check it is about.
    fn tampered_with_meta(
        edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
        edit_meta: impl FnOnce(&mut HashMap<String, String>),
    ) -> Vec<u8> {
        let bytes = to_bytes(&Trainer::new(small())).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut items: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
            .collect();
        edit(&mut items);
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut meta = header.metadata().clone().unwrap();
        edit_meta(&mut meta);
        if meta.contains_key("checksum") {
            let mut sum = Checksum::new();
            items.iter().for_each(|(n, _, _, b)| sum.tensor(n, b));
            if meta["format"] == FORMAT {
                sum.metadata(&meta);
            }
            meta.insert("checksum".into(), sum.finish());
        }
        let views: Vec<(String, TensorView<'_>)> = items
            .iter()
            .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    fn error_of(bytes: &[u8]) -> String {
        match from_bytes(Path::new("c.safetensors"), bytes, &small()) {
            Ok(_) => panic!("a tampered checkpoint was accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// The fuzz target `checkpoint` starts from a checkpoint of `small()`; this keeps that
    /// seed in the current format (`UPDATE_FUZZ_SEED=1 cargo test -p vae` rewrites it).
    #[test]
    fn the_fuzz_seed_is_a_current_checkpoint() {
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/checkpoint/small.safetensors");
        if std::env::var_os("UPDATE_FUZZ_SEED").is_some() {
            std::fs::write(&seed, to_bytes(&Trainer::new(small())).unwrap()).unwrap();
        }
        let (t, verified) = load(&seed, &small()).unwrap();
        assert!(verified && t.epoch == 0);
        let bytes = std::fs::read(&seed).unwrap();
        let meta = SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap();
        assert_eq!(meta["format"], FORMAT, "UPDATE_FUZZ_SEED=1 rewrites it");
    }

    /// What `save` writes, `load` and `read_meta` read back: weights, optimizer steps,
    /// epochs and history, and the run's configuration; the loaded trainer takes the
    /// expected run's number of epochs, not the stored one.
    #[test]
    fn save_then_load_gives_the_state_back() {
        let mut trainer = Trainer::new(small());
        trainer.epoch = 2;
        trainer.history = (1..=2)
            .map(|epoch| EpochMetrics {
                epoch,
                train_neg_elbo: 90.5,
                test_neg_elbo: 91.25 + epoch as f64,
                epoch_seconds: 1.5,
            })
            .collect();
        trainer.optimizer.steps = 7;
        let dir = crate::io::test_dir("checkpoint");
        let path = dir.join("c.safetensors");
        save(&path, &trainer).unwrap();
        assert_eq!(read_meta(&path, &read_file(&path).unwrap()).unwrap(), (small(), 2));
        let expected = TrainConfig { epochs: small().epochs + 5, ..small() };
        let (loaded, verified) = load(&path, &expected).unwrap();
        assert!(verified);
        assert_eq!((loaded.epoch, loaded.config.epochs, loaded.optimizer.steps), (2, expected.epochs, 7));
        assert_eq!(loaded.history, trainer.history);
        assert_eq!(loaded.model.params.tensors(), trainer.model.params.tensors());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn round_trip_and_refusals() {
        let (t, verified) =
            from_bytes(Path::new("c"), &to_bytes(&Trainer::new(small())).unwrap(), &small()).unwrap();
        assert!(verified);
        assert_eq!(t.model.params.names()[0], "fc1.weight");
        assert_eq!(t.model.params.tensors()[0].shape(), &[3, 4]);

        let missing = tampered(|v| v.retain(|(n, ..)| n != "fc1.bias"));
        assert!(error_of(&missing).contains("missing tensor \"fc1.bias\""));
        let extra = tampered(|v| v.push(("fc9.weight".into(), Dtype::F32, vec![1], vec![0; 4])));
        assert!(error_of(&extra).contains("unexpected tensor \"fc9.weight\""));
        let shape =
            tampered(|v| v.iter_mut().filter(|(n, ..)| n == "fc3.bias").for_each(|t| t.2 = vec![3, 1]));
        assert!(error_of(&shape).contains("tensor \"fc3.bias\" has shape [3, 1], expected [3]"));
        let dtype =
            tampered(|v| v.iter_mut().filter(|(n, ..)| n == "fc3.bias").for_each(|t| t.1 = Dtype::I32));
        assert!(error_of(&dtype).contains("tensor \"fc3.bias\" has dtype I32, expected F32"));
        let nan = tampered(|v| {
            v.iter_mut()
                .filter(|(n, ..)| n == "fc4.bias")
                .for_each(|t| t.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes()))
        });
        assert!(
            error_of(&nan).contains("tensor \"fc4.bias\" holds a non-finite value (NaN) at element 1"),
            "{}",
            error_of(&nan)
        );
        let resigned = tampered(|_| {});
        assert!(from_bytes(Path::new("c"), &resigned, &small()).unwrap().1, "re-signed: loads, verified");
        // Format v2: the checksum covers the tensors only, and a file without one (written
        // before checksums) loads unverified; v3 must have one.
        let v2 = |m: &mut HashMap<String, String>| {
            m.insert("format".into(), FORMAT_V2.into());
        };
        let v2_signed = tampered_with_meta(|_| {}, v2);
        assert!(from_bytes(Path::new("c"), &v2_signed, &small()).unwrap().1);
        let v2_unsigned = tampered_with_meta(
            |_| {},
            |m| {
                v2(m);
                m.remove("checksum");
            },
        );
        assert!(!from_bytes(Path::new("c"), &v2_unsigned, &small()).unwrap().1, "loads, unverified");
        let v3_unsigned = tampered_with_meta(|_| {}, |m| _ = m.remove("checksum"));
        assert!(error_of(&v3_unsigned).contains("metadata lacks \"checksum\""));
        // One flipped bit in tensor data, metadata untouched: the checksum catches it.
        let mut flipped = to_bytes(&Trainer::new(small())).unwrap();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        assert!(
            error_of(&flipped).contains("tensor data or metadata does not match its checksum"),
            "{}",
            error_of(&flipped)
        );
        // Metadata edited by hand, tensors untouched: the v3 checksum catches it.
        for (key, value) in [("optimizer_steps", "7"), ("optimizer_steps", "18446744073709551615")] {
            let bytes = to_bytes(&Trainer::new(small())).unwrap();
            let st_meta = SafeTensors::read_metadata(&bytes).unwrap().1.metadata().clone().unwrap();
            assert_ne!(st_meta[key], value);
            let views: Vec<(String, TensorView<'_>)> = SafeTensors::deserialize(&bytes).unwrap().tensors();
            let mut meta = st_meta.clone();
            meta.insert(key.into(), value.into());
            let edited = safetensors::serialize(views, Some(meta)).unwrap();
            let err = error_of(&edited);
            assert!(err.contains("does not match its checksum") && err.contains("was edited"), "{err}");
        }
        // A configuration serde cannot read: the error says what serde said.
        let config = tampered_with_meta(
            |_| {},
            |m| {
                let mut c: Value = serde_json::from_str(&m["config"]).unwrap();
                c["surprise"] = Value::from(1);
                m.insert("config".into(), c.to_string());
            },
        );
        let err = error_of(&config);
        assert!(err.contains("unreadable \"config\" metadata: unknown field `surprise`"), "{err}");
        assert!(error_of(b"not a checkpoint")
            .starts_with("checkpoint c.safetensors: not a valid safetensors file"));
    }
}
