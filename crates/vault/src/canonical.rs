//! Canonical JSON: the one byte form of an operation that guardians sign the hash of.
//!
//! Objects have their keys sorted bytewise (UTF-8 order), there is no insignificant
//! whitespace, strings use serde_json's escaping and numbers must be integers: a float has
//! more than one spelling, so it is refused rather than hashed.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A value that has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number is not an integer; amounts travel as decimal strings of base units.
    #[error("the number at {path} is not an integer; send amounts as decimal strings")]
    NonInteger {
        /// Where the number is, e.g. `$.params.fee`.
        path: String,
    },
}

/// The canonical text of `value`.
pub fn canonical_string(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write(value, "$", &mut out)?;
    Ok(out)
}

/// The canonical bytes of `value`.
pub fn canonical_bytes(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    canonical_string(value).map(String::into_bytes)
}

/// SHA-256 of the canonical bytes of `value`.
pub fn canonical_hash(value: &Value) -> Result<[u8; 32], CanonicalError> {
    Ok(Sha256::digest(canonical_bytes(value)?).into())
}

fn write(value: &Value, path: &str, out: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(item, &format!("{path}.{key}"), out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, &format!("{path}[{i}]"), out)?;
            }
            out.push(']');
        }
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            return Err(CanonicalError::NonInteger {
                path: path.to_owned(),
            });
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push_str(&value.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_bytewise_at_every_depth_without_whitespace() {
        let value: Value = serde_json::from_str(
            r#"{ "b": 1, "a": {"z": [ {"y": null, "x": true} ], "Z": "é\n"} }"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical_bytes(&value).unwrap()).unwrap(),
            r#"{"a":{"Z":"é\n","z":[{"x":true,"y":null}]},"b":1}"#
        );
    }

    #[test]
    fn floats_are_refused_with_their_path() {
        assert_eq!(
            canonical_bytes(&json!({"params": {"fee": [1, 0.5]}})),
            Err(CanonicalError::NonInteger {
                path: "$.params.fee[1]".into()
            })
        );
        assert!(canonical_bytes(&json!({"n": -3, "m": u64::MAX})).is_ok());
    }
}
