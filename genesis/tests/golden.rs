//! Golden test: the canonical bytes and hash of a fixed genesis. A failure means the genesis
//! format or hashing changed — every chain id would change with it (docs/genesis.md).

use auditchain_genesis::Genesis;
use auditchain_primitives::{SecretKey, sha256};

fn fixed() -> Genesis {
    let v = SecretKey::from_seed(&[0x44; 32]).public_key();
    let w = SecretKey::from_seed(&[0x55; 32]).public_key();
    Genesis::from_json(&format!(
        r#"{{"chain_name":"golden","genesis_time_ms":1763700000000,
            "consensus":{{"round_robin":{{"block_time_ms":500,"validators":["{v}"]}}}},
            "accounts":[{{"public_key":"{v}","roles":["validator"]}},
                        {{"public_key":"{w}","roles":["writer","admin"],"balance":1000}}]}}"#
    ))
    .expect("valid")
}

#[test]
fn genesis_bytes_and_hash_are_pinned() {
    let g = fixed();
    let canonical = g.canonical_json();
    println!(
        "{canonical}\n{}\n{}",
        sha256(canonical.as_bytes()),
        g.hash()
    );
    assert_eq!(
        sha256(canonical.as_bytes()).to_hex(),
        "7bd930bf26f21963ec2046a032391fed577bc4cbf8b402d26150cdf501636d0c"
    );
    assert_eq!(g.block().header.to_bytes().expect("encodes").len(), 228);
    assert_eq!(
        g.hash().to_hex(),
        "693a4b05e4769456c8a2727ef38c86598b2f6d42ccaabe1ffd673267f25cf653"
    );
}
