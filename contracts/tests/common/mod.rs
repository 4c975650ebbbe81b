//! A one-account-per-seed chain over [`MemState`]: each `block` call executes transactions
//! with [`BlockExec`] and applies its writes, as the node does.
#![allow(dead_code)]

use auditchain_contracts::{
    BlockCtx, BlockExec, ContractEvent, ContractsConfig, EventRecord, MemState, genesis_state,
};
use auditchain_primitives::call::Role;
use auditchain_primitives::tx::Payload;
use auditchain_primitives::{Hash, PublicKey, SecretKey, Transaction, TxBody};

pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

pub fn pk(seed: u8) -> PublicKey {
    key(seed).public_key()
}

/// Admin = seed 1 (balance 1,000), writers 2 and 3 (balances 300 and 100), validator 9.
pub struct Chain {
    pub state: MemState,
    pub height: u64,
    pub time_ms: u64,
    pub nonces: std::collections::BTreeMap<u8, u64>,
    pub validators: Vec<PublicKey>,
}

impl Chain {
    pub fn new(config: ContractsConfig) -> Self {
        let accounts = vec![
            (pk(1), vec![Role::Admin, Role::Writer], 1_000),
            (pk(2), vec![Role::Writer], 300),
            (pk(3), vec![Role::Writer], 100),
            (pk(9), vec![Role::Validator], 0),
        ];
        let validators = vec![pk(9)];
        Chain {
            state: genesis_state(&config, &accounts, &validators).unwrap(),
            height: 0,
            time_ms: 1_000_000,
            nonces: Default::default(),
            validators,
        }
    }

    /// A config without rewards, rules or SLAs unless a test adds them.
    pub fn bare() -> Self {
        let mut c = ContractsConfig::default();
        c.rewards.table.clear();
        c.rewards.block_reward = 0;
        c.qa_rules.clear();
        Self::new(c)
    }

    pub fn tx(&mut self, seed: u8, payload: Payload) -> Transaction {
        let n = self.nonces.entry(seed).or_default();
        let body = TxBody {
            chain_id: Hash([7; 32]),
            signer: pk(seed),
            nonce: *n,
            timestamp_ms: 1,
            payload,
        };
        *n += 1;
        Transaction::sign(body, &key(seed)).unwrap()
    }

    /// Executes one block of `txs` (block time advances by `step_ms`), returns its events.
    pub fn block_at(&mut self, step_ms: u64, txs: &[Transaction]) -> Vec<EventRecord> {
        self.height += 1;
        self.time_ms += step_ms;
        let ctx = BlockCtx {
            height: self.height,
            timestamp_ms: self.time_ms,
            proposer: pk(9),
            round_robin: true,
        };
        let mut b = BlockExec::begin(&self.state, ctx).unwrap();
        for (i, t) in txs.iter().enumerate() {
            b.apply(i as u32, t).unwrap();
        }
        let out = b.finish().unwrap();
        if let Some(v) = &out.validators {
            self.validators = v.clone();
        }
        self.state.apply(&out.writes);
        out.events
    }

    pub fn block(&mut self, txs: &[Transaction]) -> Vec<EventRecord> {
        self.block_at(1_000, txs)
    }

    /// Runs one call in its own block and returns its error text, if it failed.
    pub fn call(&mut self, seed: u8, payload: Payload) -> Option<String> {
        let t = self.tx(seed, payload);
        failure(&self.block(&[t]))
    }

    pub fn overlay(&self) -> auditchain_contracts::Overlay<'_> {
        auditchain_contracts::Overlay::new(&self.state)
    }
}

/// The error of the first failed call among `events`.
pub fn failure(events: &[EventRecord]) -> Option<String> {
    events.iter().find_map(|e| match &e.event {
        ContractEvent::CallFailed { error } => Some(error.clone()),
        _ => None,
    })
}

/// The state minus what every block changes anyway (nothing, with the bare config), for
/// "a failing call changes nothing" comparisons.
pub fn snapshot(c: &Chain) -> MemState {
    c.state.clone()
}

pub fn record(event_type: &str, entity: &str, data: serde_json::Value) -> Payload {
    Payload::RecordEvent {
        event_type: event_type.into(),
        entity_id: entity.into(),
        data_hash: auditchain_primitives::tx::data_hash(&data).unwrap(),
        data: Some(data.try_into().unwrap()),
    }
}
