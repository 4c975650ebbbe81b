//! Runs every transparency-dev RFC 6962 vector in ../shared/vectors/rfc6962 (inclusion,
//! consistency, tree roots) through the verifiers, and the generators against the happy paths.

use std::path::{Path, PathBuf};

use auditchain_primitives::merkle::{self, verify_consistency, verify_inclusion};
use auditchain_primitives::{Hash, sha256};
use base64::Engine as _;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/rfc6962")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64(v: &Value) -> Vec<u8> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => base64::engine::general_purpose::STANDARD.decode(s).unwrap(),
        other => panic!("not base64: {other}"),
    }
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

fn run(kind: &str) -> usize {
    let mut files = Vec::new();
    json_files(&vectors_dir().join(kind), &mut files);
    assert!(!files.is_empty(), "no {kind} vectors found");
    for f in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let got = if kind == "inclusion" {
            verify_inclusion(
                &b64(&v["leafHash"]),
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &proof(&v["proof"]),
                &b64(&v["root"]),
            )
        } else {
            verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &proof(&v["proof"]),
                &b64(&v["root1"]),
                &b64(&v["root2"]),
            )
        };
        assert_eq!(
            got.is_err(),
            want_err,
            "{}: {} -> {got:?}",
            f.display(),
            v["desc"]
        );
    }
    files.len()
}

#[test]
fn inclusion_vectors() {
    assert!(run("inclusion") >= 50);
}

#[test]
fn consistency_vectors() {
    assert!(run("consistency") >= 50);
}

#[test]
fn tree_roots_and_generated_proofs() {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("tree_roots.json")).unwrap(),
    )
    .unwrap();
    let leaves: Vec<Hash> = v["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| merkle::leaf_hash(&hex::decode(h.as_str().unwrap()).unwrap()))
        .collect();
    let roots = v["root_by_tree_size_hex"].as_array().unwrap();
    assert_eq!(roots.len(), 9);
    assert_eq!(merkle::empty_root(), sha256(b""));
    for (n, r) in roots.iter().enumerate() {
        let root = merkle::root(&leaves[..n]);
        assert_eq!(root.to_hex(), r.as_str().unwrap(), "size {n}");
        let mut f = merkle::Frontier::new();
        leaves[..n].iter().for_each(|l| f.append(*l, |_| {}));
        assert_eq!(f.root(), root);
        for m in 0..n as u64 {
            let p = merkle::inclusion_proof(&leaves[..n], m, n as u64).unwrap();
            verify_inclusion(&leaves[m as usize].0, m, n as u64, &p, &root.0).unwrap();
            let c = merkle::consistency_proof(&leaves[..n], m + 1, n as u64).unwrap();
            let r1 = merkle::root(&leaves[..=m as usize]);
            verify_consistency(m + 1, n as u64, &c, &r1.0, &root.0).unwrap();
        }
    }
    // the published happy-path proofs equal what we generate
    let hp: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("inclusion/1/happy-path.json")).unwrap(),
    )
    .unwrap();
    let ours = merkle::inclusion_proof(&leaves[..8], 0, 8).unwrap();
    let theirs: Vec<Vec<u8>> = proof(&hp["proof"]);
    assert_eq!(
        ours.iter().map(|h| h.0.to_vec()).collect::<Vec<_>>(),
        theirs
    );
}
