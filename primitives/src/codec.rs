//! The canonical binary codec: bincode 2.0.1 through serde, with one fixed configuration.
//!
//! Configuration (pinned; changing it changes every block hash): big-endian, fixed-width integers
//! (`u32` = 4 bytes, `u64` = 8 bytes), sequences and strings prefixed by their length as a `u64`,
//! `Option` as one tag byte (0 = none, 1 = some), enum variants as a `u32` index, fixed byte
//! strings ([`crate::Hash`] etc.) as raw bytes. Decoding is limited to [`MAX_DECODE_BYTES`] and
//! rejects trailing bytes, so every value has exactly one encoding. `docs/blocks.md` gives the
//! layout of each type so that a verifier in another language can rebuild it.

use bincode::config::{BigEndian, Configuration, Fixint, Limit};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Upper bound on any decoded value, in bytes (64 MiB).
pub const MAX_DECODE_BYTES: usize = 64 << 20;

type Config = Configuration<BigEndian, Fixint, Limit<MAX_DECODE_BYTES>>;

fn config() -> Config {
    bincode::config::standard()
        .with_big_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_DECODE_BYTES>()
}

/// Error from the canonical codec.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serialising failed (a value does not fit the format).
    #[error("encode: {0}")]
    Encode(String),
    /// The bytes do not decode as the expected type.
    #[error("decode: {0}")]
    Decode(String),
    /// The value decoded but bytes were left over.
    #[error("decode: {extra} trailing bytes after the value")]
    TrailingBytes {
        /// Number of unread bytes.
        extra: usize,
    },
}

/// Encodes `value` canonically. Errors: [`CodecError::Encode`].
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Appends the [`encode`] bytes of `value` to `out`. Errors: [`CodecError::Encode`] (`out`
/// may then hold part of the encoding after its previous length).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Length in bytes of [`encode`]`(value)`, computed without building the encoding.
/// Errors: [`CodecError::Encode`].
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(size.bytes_written)
}

/// Decodes exactly one value filling all of `bytes`. Errors: [`CodecError::Decode`] on malformed
/// input or input over [`MAX_DECODE_BYTES`], [`CodecError::TrailingBytes`] if bytes remain.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (v, used): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_big_endian_layout() {
        let b = encode(&(1u32, 2u64, Some(3u8), "ab")).unwrap();
        assert_eq!(
            b,
            vec![
                0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b'
            ]
        );
    }

    #[test]
    fn encode_into_appends_the_encoding() {
        let v = (1u32, "ab", Some(vec![7u8; 3]));
        let mut out = vec![0xee];
        encode_into(&v, &mut out).unwrap();
        assert_eq!(out[0], 0xee);
        assert_eq!(out[1..], encode(&v).unwrap()[..]);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = encode(&7u32).unwrap();
        b.push(0);
        assert!(matches!(
            decode::<u32>(&b),
            Err(CodecError::TrailingBytes { extra: 1 })
        ));
        assert!(matches!(decode::<u64>(&[1, 2]), Err(CodecError::Decode(_))));
    }

    #[test]
    fn encoded_len_is_the_encoding_length() {
        let v = (
            1u32,
            vec!["a".to_string(); 3],
            Some([9u8; 40].to_vec()),
            None::<u64>,
        );
        assert_eq!(encoded_len(&v).unwrap(), encode(&v).unwrap().len());
        assert_eq!(encoded_len(&()).unwrap(), 0);
    }
}
