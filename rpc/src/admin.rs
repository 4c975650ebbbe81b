//! The operator (admin) API: a **separate listener**, started only when the node is configured
//! with an admin address (default: none), normally on loopback. Never served on the public RPC
//! port. Methods:
//!
//! - `admin_addPeer(multiaddr)`: dial a peer once (bootstrap peers from the config keep being
//!   redialed; this one is not);
//! - `admin_allowPeer(peer_id)` / `admin_refusePeer(peer_id)`: allow a peer id to connect, or
//!   refuse it and close its connections (until allowed again or restarted);
//! - `admin_setLogLevel(filter)`: replace the log filter (`RUST_LOG` syntax, e.g.
//!   `info,auditchain_p2p=debug`);
//! - `admin_setMining(enabled)`: pause (`false`) or resume a proof-of-work miner's nonce
//!   search, like Besu's and Geth's `miner_stop` / `miner_start`; a paused miner still follows
//!   the chain. Mining is on at every start.
//!
//! Each returns `true` on success; bad input is `-32602` naming the parameter.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};

use crate::error::RpcError;

/// What the admin server needs from a node.
pub trait AdminBackend: Send + Sync + 'static {
    /// Dials a multiaddress once. Errors: bad address, no network.
    fn add_peer(&self, addr: String) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// Allows (`true`) or refuses a peer id. Errors: bad peer id, no network.
    fn set_peer_allowed(
        &self,
        peer_id: String,
        allowed: bool,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// Replaces the log filter. Errors: a filter that does not parse.
    fn set_log_level(&self, filter: &str) -> Result<(), RpcError>;
    /// Pauses (`false`) or resumes proof-of-work mining. Errors: the node has no miner (not a
    /// proof-of-work chain, or its key is not a miner), the node is stopping.
    fn set_mining(&self, enabled: bool) -> impl Future<Output = Result<(), RpcError>> + Send;
}

/// The admin methods.
#[rpc(server, client)]
pub trait AdminApi {
    /// Dial a peer once.
    #[method(name = "admin_addPeer")]
    async fn add_peer(&self, multiaddr: String) -> RpcResult<bool>;

    /// Allow a peer id to connect.
    #[method(name = "admin_allowPeer")]
    async fn allow_peer(&self, peer_id: String) -> RpcResult<bool>;

    /// Refuse a peer id and close its connections.
    #[method(name = "admin_refusePeer")]
    async fn refuse_peer(&self, peer_id: String) -> RpcResult<bool>;

    /// Replace the log filter.
    #[method(name = "admin_setLogLevel")]
    async fn set_log_level(&self, filter: String) -> RpcResult<bool>;

    /// Pause (`false`) or resume proof-of-work mining.
    #[method(name = "admin_setMining")]
    async fn set_mining(&self, enabled: bool) -> RpcResult<bool>;
}

struct AdminImpl<B> {
    backend: Arc<B>,
}

fn done(r: Result<(), RpcError>) -> RpcResult<bool> {
    r.map(|()| true).map_err(Into::into)
}

#[async_trait]
impl<B: AdminBackend> AdminApiServer for AdminImpl<B> {
    async fn add_peer(&self, multiaddr: String) -> RpcResult<bool> {
        done(self.backend.add_peer(multiaddr).await)
    }

    async fn allow_peer(&self, peer_id: String) -> RpcResult<bool> {
        done(self.backend.set_peer_allowed(peer_id, true).await)
    }

    async fn refuse_peer(&self, peer_id: String) -> RpcResult<bool> {
        done(self.backend.set_peer_allowed(peer_id, false).await)
    }

    async fn set_log_level(&self, filter: String) -> RpcResult<bool> {
        done(self.backend.set_log_level(&filter))
    }

    async fn set_mining(&self, enabled: bool) -> RpcResult<bool> {
        done(self.backend.set_mining(enabled).await)
    }
}

/// Starts the admin server on `addr` (port 0 picks a free port): small bodies, few
/// connections. Returns the bound address and the stop handle. Errors: bind failures.
pub async fn start_admin<B: AdminBackend>(
    addr: SocketAddr,
    backend: Arc<B>,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .max_request_body_size(64 << 10)
        .max_connections(8)
        .build();
    let server = Server::builder().set_config(config).build(addr).await?;
    let bound = server.local_addr()?;
    Ok((bound, server.start(AdminImpl { backend }.into_rpc())))
}
