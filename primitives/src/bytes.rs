//! Fixed-size byte strings: [`Hash`](struct@Hash) (SHA-256 digests), [`PublicKey`] (ed25519, RFC 8032) and
//! [`Signature`] (ed25519, 64 bytes).
//!
//! Invariants: every value has exactly its declared length. In human-readable formats (JSON) the
//! bytes are lowercase hex without a `0x` prefix; upper-case hex is accepted on input. In the binary
//! codec ([`crate::codec`]) they are the raw bytes, with no length prefix.

use std::fmt;
use std::str::FromStr;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Error parsing a fixed-size byte string from hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The text is not valid hex.
    #[error("not valid hex: {reason}")]
    Invalid {
        /// What the hex decoder reported.
        reason: String,
    },
    /// The decoded bytes have the wrong length.
    #[error("expected {expected} bytes ({} hex characters), got {got} bytes", expected * 2)]
    Length {
        /// Required length in bytes.
        expected: usize,
        /// Length found, in bytes.
        got: usize,
    },
}

/// Value of each byte as a hex digit, or 0xff if it is not one; uppercase digits count only
/// if `upper`.
const fn hex_digits(upper: bool) -> [u8; 256] {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

/// Hex digit values, either case.
const HEX_DIGIT: [u8; 256] = hex_digits(true);
/// Hex digit values, lowercase only (how hashes and keys serialise, and so the only form a
/// canonical body holds).
const LOWER_HEX_DIGIT: [u8; 256] = hex_digits(false);

/// Decodes `2 * out.len()` hex digits (either case) into `out` with a table, about 3× faster
/// than the `hex` crate on ids and keys (every transaction carries four). `false`, with `out`
/// partly written, on a wrong length or a non-digit.
fn decode_hex_exact(s: &[u8], out: &mut [u8]) -> bool {
    decode_with(&HEX_DIGIT, s, out)
}

/// [`decode_hex_exact`] for lowercase digits only: `false` on an uppercase one.
pub(crate) fn decode_lower_hex_exact(s: &[u8], out: &mut [u8]) -> bool {
    decode_with(&LOWER_HEX_DIGIT, s, out)
}

/// The decoding loop of [`decode_hex_exact`] over digit `table`.
fn decode_with(table: &[u8; 256], s: &[u8], out: &mut [u8]) -> bool {
    if s.len() != 2 * out.len() {
        return false;
    }
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    // a valid digit is below 16; 0xff marks every other byte
    bad < 16
}

macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex, `2 * LEN` characters.
            pub fn to_hex(&self) -> String {
                // into a buffer at once: `hex::encode` goes character by character, which showed
                // in profiles (three hashes per transaction body)
                let mut buf = [0u8; 2 * $len];
                if hex::encode_to_slice(self.0, &mut buf).is_err() {
                    return hex::encode(self.0);
                }
                String::from_utf8(buf.to_vec()).unwrap_or_else(|_| hex::encode(self.0))
            }

            /// Parses hex (either case, no `0x`). Errors: [`HexError`] on bad digits or length.
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                if s.len() != 2 * $len {
                    // the same errors as before for odd lengths and bad digits
                    let v = hex::decode(s)
                        .map_err(|e| HexError::Invalid { reason: e.to_string() })?;
                    return Self::from_slice(&v);
                }
                let mut out = [0u8; $len];
                if decode_hex_exact(s.as_bytes(), &mut out) {
                    return Ok(Self(out));
                }
                // a bad digit: the `hex` crate names it
                hex::decode_to_slice(s, &mut out)
                    .map_err(|e| HexError::Invalid { reason: e.to_string() })?;
                Ok(Self(out))
            }

            /// Copies from a slice. Errors: [`HexError::Length`] if `b.len() != LEN`.
            pub fn from_slice(b: &[u8]) -> Result<Self, HexError> {
                let arr: [u8; $len] = b
                    .try_into()
                    .map_err(|_| HexError::Length { expected: $len, got: b.len() })?;
                Ok(Self(arr))
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    let mut t = s.serialize_tuple($len)?;
                    for b in &self.0 {
                        t.serialize_element(b)?;
                    }
                    t.end()
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} bytes as {} hex characters", $len, 2 * $len)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_hex(v).map_err(E::custom)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$name, A::Error> {
                        let mut out = [0u8; $len];
                        for (i, slot) in out.iter_mut().enumerate() {
                            *slot = seq
                                .next_element()?
                                .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                        }
                        Ok($name(out))
                    }
                }
                if d.is_human_readable() {
                    d.deserialize_str(V)
                } else {
                    d.deserialize_tuple($len, V)
                }
            }
        }
    };
}

fixed_bytes!(
    /// A SHA-256 digest (FIPS 180-4), 32 bytes. Used for block hashes, transaction ids, Merkle
    /// nodes (RFC 6962) and the genesis hash (the chain identity).
    Hash,
    32
);

fixed_bytes!(
    /// An ed25519 public key (RFC 8032 encoding), 32 bytes; also the account id of its holder.
    PublicKey,
    32
);

fixed_bytes!(
    /// An ed25519 signature (RFC 8032 encoding, `R ‖ S`), 64 bytes. Validated under ZIP-215
    /// (see [`crate::keys`]).
    Signature,
    64
);

impl Hash {
    /// The all-zero hash, used as the parent of the genesis block.
    pub const ZERO: Hash = Hash([0u8; 32]);
}

/// SHA-256 of `data` (FIPS 180-4).
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 over the concatenation of `parts`, without copying them together.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_fips_value() {
        assert_eq!(
            sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_parts(&[b"ab", b"c"]), sha256(b"abc"));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = sha256(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert_eq!(
            Hash::from_hex("abcd"),
            Err(HexError::Length {
                expected: 32,
                got: 2
            })
        );
        assert!(matches!(
            Hash::from_hex("zz"),
            Err(HexError::Invalid { .. })
        ));
        // a bad digit in a string of the right length
        let mut bad = h.to_hex();
        bad.replace_range(63..64, "g");
        assert!(matches!(
            Hash::from_hex(&bad),
            Err(HexError::Invalid { .. })
        ));
        assert_eq!(h.to_hex(), format!("{h}"));
        assert!(
            h.to_hex()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn the_hex_table_agrees_with_the_hex_crate_on_every_byte_pair() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let mut ours = [0u8; 1];
                let mut theirs = [0u8; 1];
                let ok = decode_hex_exact(&[a, b], &mut ours);
                let reference = std::str::from_utf8(&[a, b])
                    .ok()
                    .map(|s| hex::decode_to_slice(s, &mut theirs).is_ok());
                assert_eq!(ok, reference == Some(true), "{a:#x} {b:#x}");
                if ok {
                    assert_eq!(ours, theirs, "{a:#x} {b:#x}");
                }
            }
        }
        assert!(!decode_hex_exact(b"abc", &mut [0u8; 2]));
    }

    #[test]
    fn json_is_hex_and_binary_is_raw() {
        let s = Signature([7u8; 64]);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, format!("\"{}\"", "07".repeat(64)));
        assert_eq!(serde_json::from_str::<Signature>(&j).unwrap(), s);
        let b = crate::codec::encode(&s).unwrap();
        assert_eq!(b, vec![7u8; 64]);
        assert_eq!(crate::codec::decode::<Signature>(&b).unwrap(), s);
    }
}
