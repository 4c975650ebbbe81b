//! The `run` configuration file (TOML). Every key is optional; command-line flags override it.
//! Relative paths are resolved against the file's directory.
//!
//! ```toml
//! genesis = "genesis.json"
//! data_dir = "data"
//! key = "validator.key"        # omit to run an observer
//! [rpc]
//! addr = "127.0.0.1:8645"
//! max_connections = 256
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use auditchain_rpc::RpcConfig;
use serde::Deserialize;

/// The parsed configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Genesis file path.
    pub genesis: Option<PathBuf>,
    /// sled data directory.
    pub data_dir: Option<PathBuf>,
    /// Validator key file.
    pub key: Option<PathBuf>,
    /// RPC listener and limits.
    pub rpc: Option<RpcConfig>,
}

impl ConfigFile {
    /// Reads and parses `path`. Errors: unreadable file or a TOML error naming the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: ConfigFile =
            toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.genesis, &mut c.data_dir, &mut c.key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.toml");
        std::fs::write(&p, "genesis = \"g.json\"\n[rpc]\naddr = \"127.0.0.1:0\"\n").unwrap();
        let c = ConfigFile::load(&p).unwrap();
        assert_eq!(c.genesis.unwrap(), dir.path().join("g.json"));
        assert_eq!(c.rpc.unwrap().addr.port(), 0);
        std::fs::write(&p, "genesys = \"g.json\"\n").unwrap();
        let e = format!("{:#}", ConfigFile::load(&p).unwrap_err());
        assert!(e.contains("genesys"), "{e}");
    }
}
