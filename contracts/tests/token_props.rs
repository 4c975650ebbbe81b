//! Property: over random sequences of token calls (including ones that must fail),
//! total supply = Σ balances = Σ voting power, after every block.

mod common;

use auditchain_contracts::tokens;
use auditchain_primitives::tx::{MAX_SAFE_INTEGER, Payload};
use common::*;
use proptest::prelude::*;

const ACCOUNTS: [u8; 4] = [1, 2, 3, 4];

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..500,
        Just(MAX_SAFE_INTEGER),
        (MAX_SAFE_INTEGER / 2)..=MAX_SAFE_INTEGER
    ]
}

fn op() -> impl Strategy<Value = (u8, Payload)> {
    let who = proptest::sample::select(ACCOUNTS.to_vec());
    prop_oneof![
        (who.clone(), who.clone(), amount()).prop_map(|(f, t, a)| (
            f,
            Payload::TokenTransfer {
                to: pk(t),
                amount: a
            }
        )),
        (who.clone(), who.clone(), amount()).prop_map(|(f, t, a)| (
            f,
            Payload::TokenMint {
                to: pk(t),
                amount: a,
                reason: "p".into()
            }
        )),
        (who.clone(), amount()).prop_map(|(f, a)| (f, Payload::TokenBurn { amount: a })),
        (who.clone(), proptest::option::of(who))
            .prop_map(|(f, t)| (f, Payload::TokenDelegate { to: t.map(pk) })),
    ]
}

fn check(c: &Chain) -> Result<(), TestCaseError> {
    let st = &c.state;
    let mut balances = 0u128;
    let mut power = 0u128;
    for s in ACCOUNTS.iter().chain(&[9]) {
        balances += u128::from(tokens::balance(st, &pk(*s)).unwrap());
        power += u128::from(tokens::voting_power(st, &pk(*s)).unwrap());
    }
    let supply = u128::from(tokens::supply(st).unwrap());
    prop_assert_eq!(supply, balances);
    prop_assert_eq!(supply, power);
    prop_assert!(supply <= u128::from(MAX_SAFE_INTEGER));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn supply_equals_sum_of_balances(blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..12)) {
        let mut c = Chain::bare();
        check(&c)?;
        for ops in blocks {
            let txs: Vec<_> = ops.into_iter().map(|(s, p)| c.tx(s, p)).collect();
            c.block(&txs);
            check(&c)?;
        }
    }
}
