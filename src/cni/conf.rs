//! Network configuration files: the first valid `.conflist`, `.conf` or
//! `.json` of the conf directory in lexical order, as libcni orders them,
//! and a cheap fingerprint to notice when the directory changes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

/// One network: a plugin chain under one name and CNI version. A single
/// plugin `.conf` file is read as a list of one.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
    /// Where it was read from.
    pub file: PathBuf,
    /// The file's bytes as a JSON list (what the result cache keeps).
    pub raw: Value,
}

impl NetworkList {
    /// Parses a file's text; `conflist` says whether it is a plugin list
    /// (`.conflist`) or a single plugin (`.conf`, `.json`).
    pub fn parse(file: &Path, text: &str, conflist: bool) -> Result<NetworkList, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| "not a JSON object".to_string())?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| "no \"name\"".to_string())?
            .to_string();
        if !valid_network_name(&name) {
            return Err(format!("network name {name:?} has characters CNI forbids"));
        }
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.1.0")
            .to_string();
        let (plugins, raw) = if conflist {
            let plugins = obj
                .get("plugins")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| "no \"plugins\" list".to_string())?;
            (plugins, value.clone())
        } else {
            if obj.contains_key("plugins") {
                return Err("has \"plugins\": name it .conflist".to_string());
            }
            let raw = serde_json::json!({
                "name": name,
                "cniVersion": cni_version,
                "plugins": [value.clone()],
            });
            (vec![value.clone()], raw)
        };
        if plugins.is_empty() {
            return Err("\"plugins\" is empty".to_string());
        }
        for (i, p) in plugins.iter().enumerate() {
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
            if ty.is_empty() || ty.contains('/') {
                return Err(format!("plugin {i} has no valid \"type\""));
            }
        }
        Ok(NetworkList {
            name,
            cni_version,
            plugins,
            file: file.to_path_buf(),
            raw,
        })
    }

    /// Rebuilds a list from the JSON a result cache kept.
    pub fn from_cached(raw: &Value) -> Result<NetworkList, String> {
        let text = raw.to_string();
        NetworkList::parse(Path::new("(cache)"), &text, true)
    }
}

/// CNI's rule for network names (letters, digits, `_`, `.`, `-`): they
/// become file names in caches and IPAM stores.
fn valid_network_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// What loading the directory found: the network in use, or why none.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    Ready(NetworkList),
    /// No valid file; the message names the directory and each invalid
    /// file with its error.
    NotReady(String),
}

/// The candidate files, sorted by name.
fn candidates(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conf" | "conflist" | "json")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the directory: the first file that parses wins; those before it
/// are reported when none does.
pub fn load(dir: &Path) -> Loaded {
    let files = match candidates(dir) {
        Ok(files) => files,
        Err(e) => return Loaded::NotReady(format!("cannot read {}: {e}", dir.display())),
    };
    let mut errors = Vec::new();
    for file in files {
        let conflist = file.extension().and_then(|e| e.to_str()) == Some("conflist");
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| NetworkList::parse(&file, &text, conflist));
        match parsed {
            Ok(list) => {
                for e in &errors {
                    tracing::warn!(error = %e, "skipping an invalid CNI config file");
                }
                return Loaded::Ready(list);
            }
            Err(e) => errors.push(format!("{}: {e}", file.display())),
        }
    }
    let mut msg = format!("no valid network config in {}", dir.display());
    if !errors.is_empty() {
        msg.push_str(&format!(" ({})", errors.join("; ")));
    }
    Loaded::NotReady(msg)
}

/// Names, sizes and modification times of the directory and its candidate
/// files: equal fingerprints mean nothing needs reloading. A file rewritten
/// in place changes its own mtime but not the directory's, hence both.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (p.to_path_buf(), m.len(), m.modified().ok()))
            .unwrap_or_else(|_| (p.to_path_buf(), 0, None))
    };
    let mut out = vec![stat(dir)];
    out.extend(candidates(dir).unwrap_or_default().iter().map(|p| stat(p)));
    out
}
