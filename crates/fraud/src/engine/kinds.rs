//! One check per rule kind: each reads its rule's parameters and the event, records what
//! it must in the window store and says what it found, if anything.

use std::time::Duration;

use serde_json::json;

use super::{
    Check, Engine, Finding, MAX_ENTRIES_READ, ip_subject, median, normalize_destination, secs_to_ms,
};
use crate::amount::Amount;
use crate::event::Event;
use crate::rules::{AuthSubject, RuleKind};
use crate::window::{StoreError, WindowRead};

impl Engine {
    /// [`RuleKind::Velocity`]: too many payment events of one user within the window.
    pub(super) async fn velocity(&self, check: &Check<'_>) -> Result<Option<Finding>, StoreError> {
        let RuleKind::Velocity {
            events,
            threshold,
            window_secs,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let settings = check.settings;
        let event = check.event;
        let Some((kind, p)) = event.payment().filter(|(k, _)| events.contains(k)) else {
            return Ok(None);
        };
        let Some(count) = self
            .count_reaching(rule, &p.user, event, *window_secs, *threshold, settings)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Finding {
            event_type: "velocity",
            severity: *severity,
            subject: p.user.clone(),
            user: Some(p.user.clone()),
            description: format!(
                "{count} payment events within {window_secs} s (threshold {threshold}), latest a {}",
                kind.as_str()
            ),
            metadata: json!({
                "count": count,
                "threshold": threshold,
                "window_secs": window_secs,
            }),
        }))
    }

    /// [`RuleKind::AmountTiers`]: a payment amount in the high, very high or below-minimum tier.
    pub(super) async fn amount_tiers(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::AmountTiers {
            currency,
            events,
            minimum,
            high,
            very_high,
            low_severity,
            medium_severity,
            high_severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let event = check.event;
        let Some((kind, p)) = event
            .payment()
            .filter(|(k, p)| events.contains(k) && &p.currency == currency)
        else {
            return Ok(None);
        };
        let (tier, severity) = if p.amount >= *very_high {
            ("very_high", *high_severity)
        } else if p.amount >= *high {
            ("high", *medium_severity)
        } else if p.amount < *minimum {
            ("below_minimum", *low_severity)
        } else {
            return Ok(None);
        };
        Ok(Some(Finding {
            event_type: "unusual_amount",
            severity,
            subject: p.user.clone(),
            user: Some(p.user.clone()),
            description: format!(
                "{} of {} {currency} is in the {tier} tier",
                kind.as_str(),
                p.amount
            ),
            metadata: json!({
                "tier": tier,
                "amount": p.amount,
                "currency": currency,
                "minimum": minimum,
                "high": high,
                "very_high": very_high,
            }),
        }))
    }

    /// [`RuleKind::CumulativeAmount`]: the sum of one user's payments within the window reaches the threshold.
    pub(super) async fn cumulative_amount(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::CumulativeAmount {
            currency,
            events,
            threshold,
            window_secs,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let settings = check.settings;
        let event = check.event;
        let Some((_, p)) = event
            .payment()
            .filter(|(k, p)| events.contains(k) && &p.currency == currency)
        else {
            return Ok(None);
        };
        let read = WindowRead::Entries {
            limit: MAX_ENTRIES_READ,
        };
        let Some(snap) = self
            .record(
                self.window_key(rule, &p.user),
                event,
                p.amount.units(),
                *window_secs,
                settings,
                read,
            )
            .await?
        else {
            return Ok(None);
        };
        let total = snap.entries.iter().fold(Amount::ZERO, |sum, e| {
            sum.saturating_add(Amount::from_units(e.value))
        });
        if total < *threshold {
            return Ok(None);
        }
        Ok(Some(Finding {
            event_type: "cumulative_amount",
            severity: *severity,
            subject: p.user.clone(),
            user: Some(p.user.clone()),
            description: format!(
                "{total} {currency} within {window_secs} s (threshold {threshold})"
            ),
            metadata: json!({
                "total": total,
                "currency": currency,
                "threshold": threshold,
                "window_secs": window_secs,
                "events": snap.count,
            }),
        }))
    }

    /// [`RuleKind::NewDestination`]: a payment to a destination the user has not paid before.
    pub(super) async fn new_destination(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::NewDestination {
            events,
            currency,
            min_amount,
            remember_secs,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let event = check.event;
        let Some((kind, p)) = event.payment().filter(|(k, p)| {
            events.contains(k) && currency.as_ref().is_none_or(|c| c == &p.currency)
        }) else {
            return Ok(None);
        };
        let Some(destination) = p.destination.as_deref() else {
            return Ok(None);
        };
        let destination = normalize_destination(destination);
        let key = format!("{}n:{}:{}\u{1f}{destination}", self.prefix, rule.id, p.user);
        let first = self
            .store
            .mark_seen(&key, Some(Duration::from_secs(*remember_secs)))
            .await?;
        if !first || p.amount < *min_amount {
            return Ok(None);
        }
        Ok(Some(Finding {
            event_type: "new_destination",
            severity: *severity,
            subject: p.user.clone(),
            user: Some(p.user.clone()),
            description: format!(
                "first {} to {destination}: {} {}",
                kind.as_str(),
                p.amount,
                p.currency
            ),
            metadata: json!({
                "destination": destination,
                "amount": p.amount,
                "currency": p.currency,
                "min_amount": min_amount,
            }),
        }))
    }

    /// [`RuleKind::AuthFailures`]: too many authentication failures of one principal or client network.
    pub(super) async fn auth_failures(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::AuthFailures {
            by,
            threshold,
            window_secs,
            ipv6_prefix,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let settings = check.settings;
        let event = check.event;
        let Event::AuthFailure(a) = event else {
            return Ok(None);
        };
        let subject = match by {
            AuthSubject::Principal => format!("principal:{}", a.principal),
            AuthSubject::Ip => ip_subject(a.ip, *ipv6_prefix),
        };
        let Some(count) = self
            .count_reaching(rule, &subject, event, *window_secs, *threshold, settings)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Finding {
            event_type: "auth_failures",
            severity: *severity,
            description: format!(
                "{count} authentication failures for {subject} within {window_secs} s (threshold {threshold})"
            ),
            metadata: json!({
                "count": count,
                "threshold": threshold,
                "window_secs": window_secs,
            }),
            subject,
            user: None,
        }))
    }

    /// [`RuleKind::GasSpike`]: a gas price sample far above the median of the recent ones, or implausible.
    pub(super) async fn gas_spike(&self, check: &Check<'_>) -> Result<Option<Finding>, StoreError> {
        let RuleKind::GasSpike {
            multiplier,
            window_secs,
            max_samples,
            min_samples,
            max_wei,
            severity,
            data_quality_severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let settings = check.settings;
        let event = check.event;
        let Event::GasSample(g) = event else {
            return Ok(None);
        };
        if g.wei <= 0 || g.wei > i128::from(*max_wei) {
            return Ok(Some(Finding {
                event_type: "gas_data_quality",
                severity: *data_quality_severity,
                subject: g.chain.clone(),
                user: None,
                description: format!(
                    "gas price sample of {} wei on {} is not plausible",
                    g.wei, g.chain
                ),
                metadata: json!({ "wei": g.wei.to_string(), "max_wei": max_wei.to_string() }),
            }));
        }
        let wei = g.wei.unsigned_abs();
        let read = WindowRead::Entries {
            limit: *max_samples as usize + 1,
        };
        let Some(snap) = self
            .record(
                self.window_key(rule, &g.chain),
                event,
                wei,
                *window_secs,
                settings,
                read,
            )
            .await?
        else {
            return Ok(None);
        };
        let mut previous: Vec<u128> = snap
            .entries
            .iter()
            .filter(|e| e.id != g.event_id)
            .take(*max_samples as usize)
            .map(|e| e.value)
            .collect();
        if previous.len() < *min_samples as usize {
            return Ok(None);
        }
        let median = median(&mut previous);
        if (wei as f64) < multiplier * median {
            return Ok(None);
        }
        Ok(Some(Finding {
            event_type: "gas_spike",
            severity: *severity,
            subject: g.chain.clone(),
            user: None,
            description: format!(
                "gas price {wei} wei on {} is {:.2}× the median {median:.0} of {} samples",
                g.chain,
                wei as f64 / median,
                previous.len()
            ),
            metadata: json!({
                "wei": wei.to_string(),
                "median_wei": median,
                "multiplier": multiplier,
                "samples": previous.len(),
            }),
        }))
    }

    /// [`RuleKind::TxPending`]: a transaction pending longer than the threshold.
    pub(super) async fn tx_pending(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::TxPending {
            threshold_secs,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let event = check.event;
        let ts_ms = check.ts_ms;
        let Event::TxPending(t) = event else {
            return Ok(None);
        };
        let pending_ms = ts_ms - t.submitted_at.timestamp_millis();
        if pending_ms <= secs_to_ms(*threshold_secs) {
            return Ok(None);
        }
        Ok(Some(Finding {
            event_type: "tx_pending",
            severity: *severity,
            subject: format!("{}:{}", t.chain, t.tx_hash),
            user: t.user.clone(),
            description: format!(
                "transaction on {} pending for {} s (threshold {threshold_secs} s)",
                t.chain,
                pending_ms / 1000
            ),
            metadata: json!({
                "chain": t.chain,
                "tx_hash": t.tx_hash,
                "pending_ms": pending_ms,
                "threshold_secs": threshold_secs,
            }),
        }))
    }

    /// [`RuleKind::TxFailed`]: a failed transaction.
    pub(super) async fn tx_failed(&self, check: &Check<'_>) -> Result<Option<Finding>, StoreError> {
        let RuleKind::TxFailed { severity } = &check.rule.kind else {
            return Ok(None);
        };
        let event = check.event;
        let Event::TxFailed(t) = event else {
            return Ok(None);
        };
        Ok(Some(Finding {
            event_type: "tx_failed",
            severity: *severity,
            subject: format!("{}:{}", t.chain, t.tx_hash),
            user: t.user.clone(),
            description: format!("transaction on {} failed: {}", t.chain, t.reason),
            metadata: json!({ "chain": t.chain, "tx_hash": t.tx_hash }),
        }))
    }

    /// [`RuleKind::ErrorRate`]: the share of 5xx answers of a service within the window above the limit.
    pub(super) async fn error_rate(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<Finding>, StoreError> {
        let RuleKind::ErrorRate {
            max_error_percent,
            window_secs,
            min_requests,
            severity,
        } = &check.rule.kind
        else {
            return Ok(None);
        };
        let rule = check.rule;
        let settings = check.settings;
        let event = check.event;
        let Event::HttpErrors(h) = event else {
            return Ok(None);
        };
        let packed = (u128::from(h.requests) << 64) | u128::from(h.server_errors);
        let read = WindowRead::Entries {
            limit: MAX_ENTRIES_READ,
        };
        let Some(snap) = self
            .record(
                self.window_key(rule, &h.service),
                event,
                packed,
                *window_secs,
                settings,
                read,
            )
            .await?
        else {
            return Ok(None);
        };
        let (requests, errors) = snap.entries.iter().fold((0u128, 0u128), |(r, e), x| {
            (r + (x.value >> 64), e + (x.value & u128::from(u64::MAX)))
        });
        // Parts per million keep the comparison exact for percentages like 1.0 or 0.5.
        let ppm = (max_error_percent * 10_000.0).round() as u128;
        if requests < u128::from(*min_requests) || errors * 1_000_000 <= requests * ppm {
            return Ok(None);
        }
        Ok(Some(Finding {
            event_type: "error_rate",
            severity: *severity,
            subject: h.service.clone(),
            user: None,
            description: format!(
                "{errors} of {requests} requests to {} failed with 5xx within {window_secs} s (limit {max_error_percent} %)",
                h.service
            ),
            metadata: json!({
                "requests": requests.to_string(),
                "server_errors": errors.to_string(),
                "max_error_percent": max_error_percent,
                "window_secs": window_secs,
            }),
        }))
    }
}
