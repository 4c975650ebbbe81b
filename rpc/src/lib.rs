//! The auditchain JSON-RPC API (JSON-RPC 2.0 over HTTP and WebSocket on one port, jsonrpsee).
//!
//! - [`api`]: the method list as a jsonrpsee trait (server and typed client are generated);
//! - [`types`]: the JSON shapes of requests and results;
//! - [`error`]: the one place where errors become JSON-RPC error codes;
//! - [`backend`]: the trait the node implements; this crate never touches storage itself;
//! - [`server`]: builds and starts the server with explicit limits;
//! - [`admin`]: the operator API on its own listener (off unless configured);
//! - [`ops`]: `GET /health`, `/ready` and `/metrics` (Prometheus) on the RPC port.
//!
//! Every method is documented in docs/rpc.md.

pub mod admin;
pub mod api;
pub mod backend;
pub mod error;
pub mod ops;
pub mod server;
pub mod types;

pub use api::AuditChainApiClient;
pub use backend::Backend;
pub use error::RpcError;
/// Client-side error type.
pub use jsonrpsee::core::client::Error as ClientError;
/// Handle that stops a started server.
pub use jsonrpsee::server::ServerHandle;
pub use server::{RpcConfig, start};

/// The plain-HTTP client type (no TLS compiled in).
pub type HttpClient = jsonrpsee_http_client::HttpClient;
/// The plain WebSocket client type (no TLS compiled in), for subscriptions.
pub type WsClient = jsonrpsee_ws_client::WsClient;

/// An HTTP client for `url` (e.g. `http://127.0.0.1:8645`) with `timeout` per request and
/// bodies up to 64 MiB. Errors: a malformed URL.
pub fn http_client(
    url: &str,
    timeout: std::time::Duration,
) -> Result<HttpClient, jsonrpsee::core::client::Error> {
    jsonrpsee_http_client::HttpClientBuilder::default()
        .request_timeout(timeout)
        .max_request_size(64 << 20)
        .max_response_size(64 << 20)
        .build(url)
}

/// A WebSocket client for `url` (e.g. `ws://127.0.0.1:8645`). Errors: connection failures.
pub async fn ws_client(url: &str) -> Result<WsClient, jsonrpsee::core::client::Error> {
    jsonrpsee_ws_client::WsClientBuilder::default()
        .build(url)
        .await
}

/// Every event matching `query` (its `cursor` and `limit` are replaced), in chain order:
/// `audit_getTrail` pages of 1,000 followed to the end of the trail. Errors: the first failed
/// call.
pub async fn full_trail(
    client: &HttpClient,
    mut query: types::TrailQuery,
) -> Result<Vec<types::EventView>, ClientError> {
    query.cursor = None;
    query.limit = Some(1000);
    let mut out = Vec::new();
    loop {
        let page = client.get_trail(query.clone()).await?;
        out.extend(page.events);
        match page.next_cursor {
            Some(cur) => query.cursor = Some(cur),
            None => return Ok(out),
        }
    }
}
