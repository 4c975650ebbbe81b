//! The `run` configuration file (TOML). Every key is optional; command-line flags override it.
//! Relative paths are resolved against the file's directory.
//!
//! ```toml
//! genesis = "genesis.json"
//! data_dir = "data"
//! key = "validator.key"        # omit to run an observer
//! admin_addr = "127.0.0.1:8646" # operator RPC (admin_*); omit to serve none
//! [rpc]
//! addr = "127.0.0.1:8645"
//! max_connections = 256
//! [p2p]                        # omit for a node without peers
//! listen = ["/ip4/127.0.0.1/tcp/30333"]
//! peers = ["/ip4/127.0.0.1/tcp/30334/p2p/12D3KooW…"]
//! observers = ["<hex public key>"]   # observer identities allowed besides the validators
//! node_key = "node.key"        # network identity; defaults to `key`
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use auditchain_primitives::PublicKey;
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
    /// Networking.
    pub p2p: Option<P2pSection>,
    /// Admin (operator) RPC address; absent: no admin listener.
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// The `[p2p]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// Multiaddresses to listen on.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Peers to dial and keep dialing.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Observer identity keys allowed to connect.
    #[serde(default)]
    pub observers: Vec<PublicKey>,
    /// Network identity key file (defaults to the validator key).
    pub node_key: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads and parses `path`. Errors: unreadable file or a TOML error naming the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: ConfigFile =
            toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let node_key = c.p2p.as_mut().and_then(|p| p.node_key.as_mut());
        for p in [&mut c.genesis, &mut c.data_dir, &mut c.key]
            .into_iter()
            .flatten()
            .chain(node_key)
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
