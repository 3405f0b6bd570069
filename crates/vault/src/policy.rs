//! What a vault protects: the operations it covers, from which amount, and how many
//! guardians must approve.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::canonical::{CanonicalError, canonical_string};

/// The most guardians a threshold may ask for.
pub const MAX_THRESHOLD: u32 = 64;

/// A kind of operation a vault can protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// A treasury redemption (tokens burned against a payout).
    Redemption,
    /// A withdrawal of tokens to an outside address.
    Withdrawal,
    /// Granting or revoking the token's minter role.
    MinterRoleChange,
    /// Rotating the custody master key.
    MasterKeyRotation,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 4] = [
        OperationKind::Redemption,
        OperationKind::Withdrawal,
        OperationKind::MinterRoleChange,
        OperationKind::MasterKeyRotation,
    ];

    /// The wire name, e.g. `minter_role_change`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationKind::Redemption => "redemption",
            OperationKind::Withdrawal => "withdrawal",
            OperationKind::MinterRoleChange => "minter_role_change",
            OperationKind::MasterKeyRotation => "master_key_rotation",
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact amount in the token's base units. On the wire it is a decimal string of digits
/// (JSON numbers lose precision above 2^53 in many clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub u128);

/// A string that is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an amount is 1 to 39 decimal digits of base units that fit in 128 bits")]
pub struct AmountError;

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError);
        }
        s.parse().map(Amount).map_err(|_| AmountError)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The threshold is 0 or above [`MAX_THRESHOLD`].
    #[error("the threshold must be 1..={MAX_THRESHOLD}, not {threshold}")]
    Threshold {
        /// The threshold asked for.
        threshold: u32,
    },
    /// The policy covers no operation, so the vault would protect nothing.
    #[error("the policy covers no operation")]
    NothingCovered,
}

/// M of N, and which operations from which amount need the vault.
///
/// N is not stored: it is the number of guardians currently in the vault, so a policy is
/// only enforceable once at least M guardians have joined (`1 ≤ M ≤ N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// M: approvals needed to release an operation.
    pub threshold: u32,
    /// The covered operations, each with the smallest amount that needs approval (`0`:
    /// always). An operation kind that is absent here is not covered.
    pub covered: BTreeMap<OperationKind, Amount>,
}

impl Policy {
    /// A policy needing `threshold` approvals and covering nothing yet.
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold,
            covered: BTreeMap::new(),
        }
    }

    /// Covers `kind` from `min_amount` base units on (`Amount(0)`: always).
    #[must_use]
    pub fn cover(mut self, kind: OperationKind, min_amount: Amount) -> Self {
        self.covered.insert(kind, min_amount);
        self
    }

    /// Checks what can be checked before any guardian joined.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.threshold == 0 || self.threshold > MAX_THRESHOLD {
            return Err(PolicyError::Threshold {
                threshold: self.threshold,
            });
        }
        if self.covered.is_empty() {
            return Err(PolicyError::NothingCovered);
        }
        Ok(())
    }

    /// Whether an operation of `kind` for `amount` needs the vault. An operation without an
    /// amount (a role change, a key rotation) needs it whenever its kind is covered.
    pub fn requires(&self, kind: OperationKind, amount: Option<Amount>) -> bool {
        match (self.covered.get(&kind), amount) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(min), Some(amount)) => amount >= *min,
        }
    }

    /// Whether `guardians` members can reach the threshold at all.
    pub fn reachable_with(&self, guardians: usize) -> bool {
        usize::try_from(self.threshold).is_ok_and(|m| m <= guardians)
    }
}

/// An operation submitted for approval: its kind, its amount when it has one, and the
/// parameters the executor needs (recipient, chain, …) — all of it is hashed and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// What is to be done.
    pub kind: OperationKind,
    /// How much, in base units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Everything else the operation is made of; integers and strings only (no floats).
    #[serde(default)]
    pub params: Value,
}

impl Operation {
    /// An operation of `kind` with no amount and empty parameters.
    pub fn new(kind: OperationKind) -> Self {
        Self {
            kind,
            amount: None,
            params: Value::Object(Default::default()),
        }
    }

    /// Sets the amount.
    #[must_use]
    pub fn amount(mut self, amount: Amount) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Sets the parameters.
    #[must_use]
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// The operation as JSON.
    pub fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), self.kind.as_str().into());
        if let Some(amount) = self.amount {
            map.insert("amount".into(), amount.to_string().into());
        }
        map.insert("params".into(), self.params.clone());
        Value::Object(map)
    }

    /// The canonical JSON that is hashed.
    pub fn canonical_json(&self) -> Result<String, CanonicalError> {
        canonical_string(&self.to_value())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn validation_refuses_zero_huge_and_empty_policies() {
        assert_eq!(
            Policy::new(0)
                .cover(OperationKind::Withdrawal, Amount(1))
                .validate(),
            Err(PolicyError::Threshold { threshold: 0 })
        );
        assert_eq!(
            Policy::new(MAX_THRESHOLD + 1)
                .cover(OperationKind::Withdrawal, Amount(1))
                .validate(),
            Err(PolicyError::Threshold {
                threshold: MAX_THRESHOLD + 1
            })
        );
        assert_eq!(Policy::new(2).validate(), Err(PolicyError::NothingCovered));
        let policy = Policy::new(2).cover(OperationKind::Withdrawal, Amount(1));
        assert_eq!(policy.validate(), Ok(()));
        assert!(!policy.reachable_with(1));
        assert!(policy.reachable_with(2));
    }

    #[test]
    fn requires_compares_exact_amounts_per_kind() {
        let policy = Policy::new(2)
            .cover(OperationKind::Redemption, Amount(1_000_000))
            .cover(OperationKind::MinterRoleChange, Amount(0));
        assert!(!policy.requires(OperationKind::Redemption, Some(Amount(999_999))));
        assert!(policy.requires(OperationKind::Redemption, Some(Amount(1_000_000))));
        assert!(policy.requires(OperationKind::Redemption, Some(Amount(u128::MAX))));
        assert!(policy.requires(OperationKind::Redemption, None));
        assert!(policy.requires(OperationKind::MinterRoleChange, None));
        assert!(!policy.requires(OperationKind::Withdrawal, Some(Amount(u128::MAX))));
    }

    #[test]
    fn amounts_are_digit_strings_on_the_wire() {
        let max = u128::MAX.to_string();
        assert_eq!(max.parse::<Amount>(), Ok(Amount(u128::MAX)));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            "1e3",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(bad.parse::<Amount>(), Err(AmountError), "{bad:?}");
        }
        let json = serde_json::to_string(&Amount(u128::MAX)).unwrap();
        assert_eq!(json, format!("\"{max}\""));
        assert_eq!(
            serde_json::from_str::<Amount>(&json).unwrap(),
            Amount(u128::MAX)
        );
        let op = Operation::new(OperationKind::Redemption).amount(Amount(5));
        assert_eq!(
            op.canonical_json().unwrap(),
            r#"{"amount":"5","kind":"redemption","params":{}}"#
        );
    }
}
