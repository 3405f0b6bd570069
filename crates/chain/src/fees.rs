//! EIP-1559 fee selection and replacement bumps.

use alloy::rpc::types::FeeHistory;
use serde::{Deserialize, Serialize};

/// The two EIP-1559 fee fields of a transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    /// `max_fee_per_gas`.
    pub max_fee_per_gas: u128,
    /// `max_priority_fee_per_gas`.
    pub max_priority_fee_per_gas: u128,
}

/// Fee policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeePolicy {
    /// The lowest priority fee offered, whatever the fee history says (wei).
    pub min_priority_fee: u128,
    /// No transaction, replacements included, offers more than this max fee (wei).
    pub max_fee_cap: u128,
}

impl Default for FeePolicy {
    fn default() -> Self {
        Self {
            min_priority_fee: 1_000_000_000,
            max_fee_cap: 500_000_000_000,
        }
    }
}

/// Minimum replacement bump as a fraction: 1/8 = 12.5 %, what nodes require to accept a
/// transaction with the same nonce.
const BUMP_NUMERATOR: u128 = 9;
const BUMP_DENOMINATOR: u128 = 8;

/// Fees for a new transaction from `eth_feeHistory`: the next block's base fee (the last
/// entry of `base_fee_per_gas`), the median of the reported priority rewards (at least
/// `policy.min_priority_fee`), and `max fee = 2 × base fee + priority` so the transaction
/// stays valid through several full blocks. Capped at `policy.max_fee_cap`.
pub fn from_history(history: &FeeHistory, policy: &FeePolicy) -> Fees {
    let base = history.base_fee_per_gas.last().copied().unwrap_or(0);
    let mut rewards: Vec<u128> = history
        .reward
        .as_ref()
        .map(|blocks| blocks.iter().filter_map(|r| r.first().copied()).collect())
        .unwrap_or_default();
    rewards.sort_unstable();
    let median = rewards.get(rewards.len() / 2).copied().unwrap_or(0);
    let priority = median.max(policy.min_priority_fee);
    from_base_fee(base, priority, policy)
}

/// `max fee = 2 × base + priority`, capped; the priority never exceeds the max fee.
pub fn from_base_fee(base_fee: u128, priority: u128, policy: &FeePolicy) -> Fees {
    let max_fee = base_fee
        .saturating_mul(2)
        .saturating_add(priority)
        .min(policy.max_fee_cap);
    Fees {
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: priority.min(max_fee),
    }
}

/// Fees for replacing a transaction that offered `old`: both fields at least 12.5 % higher
/// (rounded up) and at least what the market asks now (`current`). `None` if the cap does
/// not leave room for a 12.5 % bump (the node would refuse the replacement).
pub fn bump(old: Fees, current: Fees, policy: &FeePolicy) -> Option<Fees> {
    let min_priority = ceil_bump(old.max_priority_fee_per_gas);
    let min_max = ceil_bump(old.max_fee_per_gas);
    let priority = min_priority.max(current.max_priority_fee_per_gas);
    let max_fee = min_max
        .max(current.max_fee_per_gas)
        .max(priority)
        .min(policy.max_fee_cap);
    if max_fee < min_max || max_fee < priority {
        return None;
    }
    Some(Fees {
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: priority,
    })
}

fn ceil_bump(value: u128) -> u128 {
    value
        .saturating_mul(BUMP_NUMERATOR)
        .div_ceil(BUMP_DENOMINATOR)
        .max(value.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn max_fee_is_twice_base_plus_priority() {
        let history = FeeHistory {
            base_fee_per_gas: vec![10, 20, 30],
            reward: Some(vec![vec![5], vec![7], vec![3]]),
            ..Default::default()
        };
        let policy = FeePolicy {
            min_priority_fee: 1,
            max_fee_cap: u128::MAX,
        };
        let fees = from_history(&history, &policy);
        assert_eq!(fees.max_priority_fee_per_gas, 5);
        assert_eq!(fees.max_fee_per_gas, 2 * 30 + 5);
    }

    #[test]
    fn priority_floor_applies() {
        let history = FeeHistory {
            base_fee_per_gas: vec![100],
            reward: None,
            ..Default::default()
        };
        let policy = FeePolicy {
            min_priority_fee: 9,
            max_fee_cap: u128::MAX,
        };
        assert_eq!(
            from_history(&history, &policy),
            Fees {
                max_fee_per_gas: 209,
                max_priority_fee_per_gas: 9
            }
        );
    }

    #[test]
    fn bump_refused_at_the_cap() {
        let policy = FeePolicy {
            min_priority_fee: 1,
            max_fee_cap: 100,
        };
        let old = Fees {
            max_fee_per_gas: 95,
            max_priority_fee_per_gas: 10,
        };
        assert_eq!(bump(old, old, &policy), None);
    }

    proptest! {
        #[test]
        fn bump_is_at_least_an_eighth_and_capped(
            old_max in 1u128..1_000_000_000_000,
            old_prio_share in 0u128..=100,
            cur_base in 0u128..1_000_000_000_000,
            cur_prio in 0u128..10_000_000_000,
            cap in 1u128..10_000_000_000_000,
        ) {
            let policy = FeePolicy { min_priority_fee: 0, max_fee_cap: cap };
            let old = Fees {
                max_fee_per_gas: old_max,
                max_priority_fee_per_gas: old_max * old_prio_share / 100,
            };
            let current = from_base_fee(cur_base, cur_prio, &policy);
            match bump(old, current, &policy) {
                Some(new) => {
                    prop_assert!(new.max_fee_per_gas * 8 >= old.max_fee_per_gas * 9);
                    prop_assert!(new.max_priority_fee_per_gas * 8 >= old.max_priority_fee_per_gas * 9);
                    prop_assert!(new.max_fee_per_gas > old.max_fee_per_gas);
                    prop_assert!(new.max_fee_per_gas <= cap);
                    prop_assert!(new.max_priority_fee_per_gas <= new.max_fee_per_gas);
                    prop_assert!(new.max_fee_per_gas >= current.max_fee_per_gas.min(cap));
                }
                None => prop_assert!(ceil_bump(old.max_fee_per_gas) > cap || ceil_bump(old.max_priority_fee_per_gas) > cap),
            }
        }
    }
}
