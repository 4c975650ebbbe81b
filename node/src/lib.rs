//! The auditchain node: CLI, configuration, the chain actor (the one storage writer), the
//! mempool, the executor, the RPC backend, offline verifiers and benchmarks.
//!
//! Data flow of an event: RPC `audit_submit[Batch]` → parse canonical body and check limits →
//! batch signature verification on all cores → chain actor admits to the mempool → proposer
//! builds a block, executes it, seals it, commits it atomically and flushes → waiters and head
//! subscribers are told.

pub mod admission;
pub mod backend;
pub mod bench;
pub mod bench_cluster;
pub mod chain;
pub mod cli;
mod cli_contracts;
pub mod config;
pub mod contract_queries;
pub mod demo;
pub mod execute;
pub mod ingest;
pub mod keyfile;
pub mod logging;
pub mod mempool;
pub mod network;
pub mod node;
pub mod recent;
pub mod reconcile;
pub mod testnet;
pub mod verify;

pub use node::{Node, NodeOptions};
