//! Wiring: storage → p2p (when the node has peers) → chain actor → RPC server, and an orderly
//! stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use auditchain_genesis::Genesis;
use auditchain_p2p::{NetHandle, P2pConfig};
use auditchain_primitives::{Hash, PublicKey, SecretKey};
use auditchain_rpc::ServerHandle;
use auditchain_rpc::admin::{AdminBackend, start_admin};
use auditchain_rpc::{RpcConfig, RpcError};
use auditchain_storage::{ChainStore, MemKv, SledKv, Store};
use tokio::sync::{broadcast, watch};

use crate::backend::{BackendParts, NodeBackend};
use crate::chain::{self, ActorParts, ChainHandle};
use crate::network::{StoreBlocks, pump};

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The chain's genesis.
    pub genesis: Genesis,
    /// sled data directory; `None` keeps everything in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// This node's validator key; `None` runs an observer that never proposes.
    pub key: Option<SecretKey>,
    /// RPC listener and limits.
    pub rpc: RpcConfig,
    /// Networking; `None` runs a node without peers (a one-validator chain).
    pub p2p: Option<P2pOptions>,
    /// Admin (operator) RPC listener; `None` (the default) serves no admin methods.
    pub admin_addr: Option<SocketAddr>,
}

/// Networking options of a node.
#[derive(Debug, Clone, Default)]
pub struct P2pOptions {
    /// Multiaddresses to listen on (e.g. `/ip4/127.0.0.1/tcp/30333`).
    pub listen: Vec<String>,
    /// Peers to dial and keep dialing (multiaddresses ending in `/p2p/<peer id>`).
    pub peers: Vec<String>,
    /// Identity keys of observer nodes allowed to connect, besides the validators.
    pub observers: Vec<PublicKey>,
    /// The node's network identity; defaults to the validator key. An observer (no validator
    /// key) needs one, listed in the validators' `observers`.
    pub node_key: Option<SecretKey>,
}

/// A running node.
pub struct Node {
    /// The bound RPC address (HTTP and WebSocket).
    pub rpc_addr: SocketAddr,
    /// The chain id (genesis hash).
    pub chain_id: Hash,
    /// Read access to storage.
    pub store: Arc<dyn ChainStore>,
    /// The chain actor.
    pub chain: ChainHandle,
    /// The network, if started.
    pub net: Option<NetHandle>,
    /// The bound admin address, if an admin listener was asked for.
    pub admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    actor: Option<std::thread::JoinHandle<()>>,
    rpc: ServerHandle,
    admin: Option<ServerHandle>,
}

/// The admin backend: network peer management, the log filter and the miner switch.
struct NodeAdmin {
    net: Option<NetHandle>,
    chain: ChainHandle,
}

impl NodeAdmin {
    fn net(&self) -> Result<&NetHandle, RpcError> {
        self.net
            .as_ref()
            .ok_or_else(|| RpcError::Unavailable("this node runs without a network".into()))
    }
}

impl AdminBackend for NodeAdmin {
    async fn add_peer(&self, addr: String) -> Result<(), RpcError> {
        self.net()?
            .dial(&addr)
            .await
            .map_err(|e| RpcError::params("multiaddr", e.to_string()))
    }

    async fn set_peer_allowed(&self, peer_id: String, allowed: bool) -> Result<(), RpcError> {
        self.net()?
            .set_allowed(&peer_id, allowed)
            .await
            .map_err(|e| RpcError::params("peer_id", e.to_string()))
    }

    fn set_log_level(&self, filter: &str) -> Result<(), RpcError> {
        crate::logging::set_filter(filter).map_err(|e| RpcError::params("filter", e))
    }

    async fn set_mining(&self, enabled: bool) -> Result<(), RpcError> {
        self.chain
            .set_mining(enabled)
            .await
            .map_err(|e| RpcError::Unavailable(e.to_string()))?
            .map_err(|e| RpcError::params("enabled", format!("this node does not mine: {e}")))
    }
}

/// Opens the store for `data_dir` (sled) or in memory.
pub fn open_store(data_dir: Option<&std::path::Path>) -> anyhow::Result<Arc<dyn ChainStore>> {
    Ok(match data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating data dir {}", dir.display()))?;
            Arc::new(Store::new(SledKv::open(dir)?))
        }
        None => Arc::new(Store::new(MemKv::default())),
    })
}

impl Node {
    /// Opens storage (checking the stored head), starts the chain actor and the RPC server.
    /// Errors: another chain's data dir, a damaged head, a busy RPC address. A validator key
    /// outside the validator set is not an error: the node follows the chain and votes once
    /// governance adds the key.
    pub async fn start(opts: NodeOptions) -> anyhow::Result<Node> {
        let store = open_store(opts.data_dir.as_deref())?;
        Self::start_with_store(opts, store).await
    }

    /// Like [`Node::start`] over a store the caller opened (embedding, fault-injection tests);
    /// `opts.data_dir` is ignored.
    pub async fn start_with_store(
        opts: NodeOptions,
        store: Arc<dyn ChainStore>,
    ) -> anyhow::Result<Node> {
        let genesis = Arc::new(opts.genesis);
        let start = chain::open_chain(&*store, &genesis)?;
        tracing::info!(
            chain = %genesis.hash(),
            height = start.head.height,
            "chain opened"
        );
        // the validator set in force and a scheduled change (governance changes the set)
        let state = crate::execute::StoreState(&*store);
        let mut validators =
            auditchain_contracts::system::validators_at(&state, start.head.height + 1)
                .context("reading the validator set")?;
        if let Some(p) = auditchain_contracts::system::pending_validators(&state)
            .context("reading the scheduled validator set")?
        {
            validators.extend(p.validators);
        }
        if let Some(k) = &opts.key
            && !validators.contains(&k.public_key())
        {
            tracing::warn!(
                key = %k.public_key(),
                "this key is not in the validator set: following the chain without voting \
                 until governance adds it"
            );
        }
        let (heads, _) = broadcast::channel(256);
        let (finalized, _) = broadcast::channel(256);
        let (durable, durable_rx) = watch::channel(start.head.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let validator = opts.key.as_ref().map(SecretKey::public_key);
        let mut net = None;
        let mut events = None;
        if let Some(p) = &opts.p2p {
            let key = p
                .node_key
                .clone()
                .or_else(|| opts.key.clone())
                .context("an observer needs a node key for the network")?;
            // the set in force and a scheduled one (a validator that governance removed is
            // not let back in by a restart), and the observers
            let mut allowed = validators.clone();
            allowed.extend(p.observers.iter().copied());
            let provider = Arc::new(StoreBlocks {
                store: Arc::clone(&store),
                durable: durable_rx.clone(),
            });
            let (n, ev) = auditchain_p2p::start(
                P2pConfig {
                    key,
                    listen: p.listen.clone(),
                    bootstrap: p.peers.clone(),
                    allowed,
                    chain_id: genesis.hash(),
                    max_message_bytes: auditchain_p2p::MAX_GOSSIP_BYTES,
                },
                provider,
            )
            .await
            .context("starting the network")?;
            net = Some(n);
            events = Some(ev);
        }
        let (handle, actor) = chain::spawn(ActorParts {
            store: Arc::clone(&store),
            genesis: Arc::clone(&genesis),
            start,
            key: opts.key,
            net: net.clone(),
            heads: heads.clone(),
            finalized: finalized.clone(),
            durable,
            shutdown: shutdown_rx,
            observers: opts
                .p2p
                .as_ref()
                .map(|p| p.observers.clone())
                .unwrap_or_default(),
        })?;
        if let (Some(n), Some(ev)) = (&net, events) {
            tokio::spawn(pump(ev, n.clone(), handle.clone(), Arc::clone(&genesis)));
        }
        let backend = NodeBackend::new(BackendParts {
            store: Arc::clone(&store),
            chain: handle.clone(),
            genesis: Arc::clone(&genesis),
            heads,
            finalized,
            durable: durable_rx,
            validator,
            net: net.clone(),
        });
        let (rpc_addr, rpc) = auditchain_rpc::start(&opts.rpc, Arc::new(backend))
            .await
            .with_context(|| format!("starting RPC on {}", opts.rpc.addr))?;
        tracing::info!(%rpc_addr, "RPC listening (HTTP and WebSocket)");
        let (admin_addr, admin) = match opts.admin_addr {
            Some(addr) => {
                let (a, h) = start_admin(
                    addr,
                    Arc::new(NodeAdmin {
                        net: net.clone(),
                        chain: handle.clone(),
                    }),
                )
                .await
                .with_context(|| format!("starting the admin RPC on {addr}"))?;
                tracing::info!(admin_addr = %a, "admin RPC listening");
                (Some(a), Some(h))
            }
            None => (None, None),
        };
        Ok(Node {
            rpc_addr,
            chain_id: genesis.hash(),
            store,
            chain: handle,
            net,
            admin_addr,
            shutdown,
            actor: Some(actor),
            rpc,
            admin,
        })
    }

    /// `http://ADDR`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// `ws://ADDR`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.rpc_addr)
    }

    /// Stops the RPC server, then the chain actor (which finishes any block it is committing).
    pub async fn stop(mut self) {
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
        if let Some(a) = self.admin.take() {
            let _ = a.stop();
            a.stopped().await;
        }
        let _ = self.shutdown.send(true);
        if let Some(j) = self.actor.take() {
            let _ = tokio::task::spawn_blocking(move || j.join()).await;
        }
        if let Some(n) = &self.net {
            n.shutdown().await;
        }
    }
}
