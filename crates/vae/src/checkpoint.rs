//! Checkpoints in safetensors: the parameters under PyTorch `state_dict` names
//! (`fc1.weight` `[400, 784]`, …), the optimizer state under `optimizer.{slot}.{name}`, and
//! in the metadata the run's configuration, the epochs done, the optimizer's step count and
//! the metrics so far. Random streams are derived from the seed and the epoch (see
//! [`crate::train::stream_rng`]), so this is all a resumed run needs to continue exactly.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};
use tensor::Tensor;

use crate::error::{Result, VaeError};
use crate::io::atomic_write;
use crate::model::Vae;
use crate::optim::Optimizer;
use crate::train::{EpochMetrics, TrainConfig, Trainer};

/// The metadata value naming this file format. v2 stores the whole configuration as serde
/// JSON ([`TrainConfig::to_json`]); v1 stored a flat subset of it.
const FORMAT: &str = "vae-from-scratch checkpoint v2";
/// The format before the configuration moved into one serialized struct.
const FORMAT_V1: &str = "vae-from-scratch checkpoint v1";

/// Serializes a trainer's state to safetensors bytes. A state holding a non-finite value
/// (a parameter or the optimizer's state) is an error naming the tensor: loading refuses
/// such a checkpoint, so saving one would leave a run that can neither continue nor be
/// evaluated.
pub fn to_bytes(trainer: &Trainer) -> Result<Vec<u8>> {
    let params = &trainer.model.params;
    let named = params
        .names()
        .iter()
        .cloned()
        .zip(params.tensors().iter())
        .chain(trainer.optimizer.named_state(params).map(|(name, t)| (format!("optimizer.{name}"), t)));
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in named {
        let values = t.to_vec();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(VaeError::NonFinite(format!(
                "tensor \"{name}\" holds a non-finite value ({}) at element {i}",
                values[i]
            )));
        }
        owned.push((name, t.shape().to_vec(), values.iter().flat_map(|x| x.to_le_bytes()).collect()));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("sizes agree")))
        .collect();
    let history: Vec<Value> = trainer
        .history
        .iter()
        .map(|m| json!([m.epoch, m.train_neg_elbo, m.test_neg_elbo, m.epoch_seconds]))
        .collect();
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("checksum".to_string(), checksum(owned.iter().map(|(n, _, b)| (n.as_str(), b.as_slice())))),
        ("config".to_string(), trainer.config.to_json().to_string()),
        ("epoch".to_string(), trainer.epoch.to_string()),
        ("optimizer_steps".to_string(), trainer.optimizer.steps.to_string()),
        ("history".to_string(), Value::Array(history).to_string()),
    ]);
    // Only a bug (mismatched sizes) could make this fail.
    Ok(safetensors::serialize(views, Some(meta)).expect("tensor views agree with their shapes"))
}

/// Writes a trainer's state to `path` atomically (a temporary file, fsync, rename), so a
/// crash at any moment leaves the previous checkpoint intact.
pub fn save(path: &Path, trainer: &Trainer) -> Result<()> {
    atomic_write(path, &to_bytes(trainer)?)
}

/// The checksum of a checkpoint's tensors: CRC-32 over every tensor's name and bytes, in
/// name order, as `crc32:xxxxxxxx`.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut h = crc32fast::Hasher::new();
    for (name, bytes) in sorted {
        h.update(name.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("crc32:{:08x}", h.finalize())
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

/// Configuration, epochs, optimizer steps, history, and the stored checksum if any.
type Meta = (TrainConfig, usize, u64, Vec<EpochMetrics>, Option<String>);

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
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
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
    Ok((st, (config, epoch, steps, history, meta.get("checksum").cloned())))
}

/// Loads a checkpoint into a trainer. Refuses, with a message naming the difference, a file
/// that is not a checkpoint, whose tensors' names, shapes or dtypes do not match its model,
/// whose tensors hold a NaN or an infinity or fail the stored checksum, or whose run
/// configuration differs from `expected` (other than the number of epochs); the trainer
/// takes `expected`'s number of epochs. Also says whether a checksum was there to verify
/// (checkpoints written before checksums load unverified).
pub fn load(path: &Path, expected: &TrainConfig) -> Result<(Trainer, bool)> {
    from_bytes(path, &read_file(path)?, expected)
}

/// [`load`] from the bytes of a checkpoint file; `path` only names it in errors. Any input
/// gives a trainer or an error, never a panic (the fuzz target `checkpoint` checks this).
pub fn from_bytes(path: &Path, bytes: &[u8], expected: &TrainConfig) -> Result<(Trainer, bool)> {
    let bad = |msg: String| VaeError::Checkpoint { path: path.to_path_buf(), msg };
    let (st, (config, epoch, steps, history, stored_sum)) = parse_meta(path, bytes)?;
    if let Some(stored) = &stored_sum {
        let names = st.names();
        let actual = checksum(names.iter().filter_map(|n| st.tensor(n).ok().map(|v| (*n, v.data()))));
        if &actual != stored {
            return Err(bad(format!(
                "tensor data does not match its checksum ({actual}, stored {stored}): the file is damaged"
            )));
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

    /// [`tampered`], and `edit_meta` changes the metadata.
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
        // Drop the checksum, so each test reaches the check it is about.
        let mut meta = header.metadata().clone().unwrap();
        meta.remove("checksum");
        edit_meta(&mut meta);
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
        let unverified = tampered(|_| {});
        assert!(
            !from_bytes(Path::new("c"), &unverified, &small()).unwrap().1,
            "no checksum: loads, unverified"
        );
        // One flipped bit in tensor data, metadata untouched: the checksum catches it.
        let mut flipped = to_bytes(&Trainer::new(small())).unwrap();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        assert!(
            error_of(&flipped).contains("tensor data does not match its checksum"),
            "{}",
            error_of(&flipped)
        );
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
