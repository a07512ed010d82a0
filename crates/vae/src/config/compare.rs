//! Whether a checkpoint's configuration may be continued by a run, and how two
//! configurations differ, key by key.

use serde_json::Value;

use super::TrainConfig;

impl TrainConfig {
    /// The differences from `other`, other than the number of epochs (which a resumed run
    /// may extend), as `key: ours vs theirs` items with dotted keys (`optimizer.lr: …`).
    pub fn differences(&self, other: &TrainConfig) -> Vec<String> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        flatten("", &self.to_json(), &mut a);
        flatten("", &other.to_json(), &mut b);
        let value = |list: &[(String, Value)], key: &str| {
            list.iter().find(|(k, _)| k == key).map_or(Value::Null, |(_, v)| v.clone())
        };
        let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| k.as_str() != "epochs")
            .filter_map(|k| {
                let (x, y) = (value(&a, k), value(&b, k));
                (x != y).then(|| format!("{k}: {x} vs {y}"))
            })
            .collect()
    }

    /// The one rule for continuing a run: `stored` (a checkpoint's configuration) may be
    /// continued by this run when everything but the number of epochs is the same. The
    /// error names every difference.
    pub fn check_same_run(&self, stored: &TrainConfig) -> std::result::Result<(), ConfigMismatch> {
        let differences = stored.differences(self);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(ConfigMismatch { differences })
        }
    }
}

/// A checkpoint's configuration that a run may not continue: every difference, as
/// [`TrainConfig::differences`] words them (checkpoint first, this run second).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("another configuration (checkpoint vs this run: {})", differences.join(", "))]
pub struct ConfigMismatch {
    /// `key: checkpoint's vs this run's` for each setting that differs.
    pub differences: Vec<String>,
}

/// Every leaf of `v` with its dotted path.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}
