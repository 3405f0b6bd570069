//! The versioned reward rules: every number the pricing uses, read from TOML and validated
//! once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::amount::{Decimal, Hnv};

/// The shipped rules, `crates/rewards/rules/default.toml`: the seed tokenomics (see
/// `docs/REWARDS.md`).
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// Why a rules document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The text is not TOML.
    #[error("the rules are not valid TOML")]
    Toml(#[source] toml::de::Error),
    /// A key is missing, unknown or holds a value out of range.
    #[error("rules key `{key}`: {reason}")]
    Invalid {
        /// The dotted key, e.g. `contribution.base_hnv`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The rules file could not be read.
    #[error("cannot read the rules file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// Validated reward rules: what each event earns, under a version recorded with every
/// reward they price.
///
/// ```
/// use haven_rewards::{Decimal, Rules};
///
/// let rules = Rules::shipped();
/// assert_eq!(rules.version(), "2026-12-07.1");
/// assert_eq!(rules.staking().apy(), Decimal::parse("0.10")?);
/// assert_eq!(rules.staking().accrual_period_days(), 7);
///
/// let err = Rules::from_toml(&haven_rewards::DEFAULT_RULES.replace(r#"base_hnv = "50""#, r#"base_hnv = "-50""#))
///     .unwrap_err();
/// assert_eq!(err.to_string(), "rules key `contribution.base_hnv`: must not be negative");
/// # Ok::<(), haven_rewards::AmountError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub(crate) version: String,
    pub(crate) booking: BookingRules,
    pub(crate) review: ReviewRules,
    pub(crate) attendance: BTreeMap<String, Hnv>,
    pub(crate) contribution: ContributionRules,
    pub(crate) coaching: Vec<(String, Hnv)>,
    pub(crate) referral: BTreeMap<String, Hnv>,
    pub(crate) staking: StakingRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BookingRules {
    pub(crate) currency: String,
    pub(crate) hnv_per_unit: Decimal,
    pub(crate) multi_night_min_nights: u32,
    pub(crate) multi_night_bonus: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReviewRules {
    pub(crate) hnv: Hnv,
    pub(crate) min_rating: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContributionRules {
    pub(crate) base_hnv: Decimal,
    pub(crate) min_quality: Decimal,
    pub(crate) max_quality: Decimal,
}

/// The staking settings, for the accrual job: a yearly rate paid once per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingRules {
    apy: Decimal,
    accrual_period_days: u32,
}

impl StakingRules {
    /// The yearly rate, e.g. `0.10` for 10 %.
    pub fn apy(&self) -> Decimal {
        self.apy
    }

    /// Days between two accruals (7: weekly).
    pub fn accrual_period_days(&self) -> u32 {
        self.accrual_period_days
    }

    /// The time between two accruals.
    pub fn accrual_period(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::from(self.accrual_period_days))
    }
}

#[allow(clippy::expect_used)] // the embedded file is a constant; the unit test below parses it
static SHIPPED: LazyLock<Rules> =
    LazyLock::new(|| Rules::from_toml(DEFAULT_RULES).expect("the shipped rules are valid"));

impl Rules {
    /// The shipped [`DEFAULT_RULES`].
    pub fn shipped() -> Rules {
        SHIPPED.clone()
    }

    /// Parses and validates a rules document (the format of [`DEFAULT_RULES`]).
    pub fn from_toml(text: &str) -> Result<Rules, RulesError> {
        let table: toml::Table = toml::from_str(text).map_err(RulesError::Toml)?;
        let mut root = Section::root(&table);
        let version = root.string("version")?;
        let valid_version = !version.is_empty()
            && version.len() <= 64
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
        if !valid_version {
            return Err(root.invalid(
                "version",
                "must be 1 to 64 characters of letters, digits and `.-_+`",
            ));
        }

        let mut section = root.section("booking")?;
        let currency = section.string("currency")?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(section.invalid(
                "currency",
                "must be a three-letter ISO 4217 code in upper case",
            ));
        }
        let booking = BookingRules {
            currency: currency.to_owned(),
            hnv_per_unit: section.decimal("hnv_per_unit")?,
            multi_night_min_nights: section.integer("multi_night_min_nights", 1, u32::MAX)?,
            multi_night_bonus: section.decimal("multi_night_bonus")?,
        };
        section.finish()?;

        let mut section = root.section("review")?;
        let review = ReviewRules {
            hnv: section.hnv("hnv")?,
            min_rating: section.integer("min_rating", 1, 5)?,
        };
        section.finish()?;

        let mut section = root.section("attendance")?;
        let attendance = section.amounts("hnv")?;
        section.finish()?;

        let mut section = root.section("contribution")?;
        let contribution = ContributionRules {
            base_hnv: section.decimal("base_hnv")?,
            min_quality: section.decimal("min_quality")?,
            max_quality: section.decimal("max_quality")?,
        };
        if contribution.max_quality < contribution.min_quality {
            return Err(section.invalid("max_quality", "must not be below `min_quality`"));
        }
        section.finish()?;

        let mut section = root.section("coaching")?;
        let coaching = section.milestones("milestones")?;
        section.finish()?;

        let mut section = root.section("referral")?;
        let referral = section.amounts("hnv")?;
        section.finish()?;

        let mut section = root.section("staking")?;
        let staking = StakingRules {
            apy: section.decimal("apy")?,
            accrual_period_days: section.integer("accrual_period_days", 1, 366)?,
        };
        section.finish()?;
        root.finish()?;

        Ok(Rules {
            version: version.to_owned(),
            booking,
            review,
            attendance,
            contribution,
            coaching,
            referral,
            staking,
        })
    }

    /// Reads, parses and validates the rules file at `path`.
    pub fn from_path(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Rules::from_toml(&text)
    }

    /// The version every reward priced by these rules records.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The staking settings.
    pub fn staking(&self) -> &StakingRules {
        &self.staking
    }
}

/// A table of the rules document being read: its dotted path and the keys taken so far,
/// so that unknown keys can be refused.
struct Section<'a> {
    path: String,
    table: &'a toml::Table,
    taken: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn root(table: &'a toml::Table) -> Self {
        Section {
            path: String::new(),
            table,
            taken: Vec::new(),
        }
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn invalid(&self, name: &str, reason: impl Into<String>) -> RulesError {
        RulesError::Invalid {
            key: self.key(name),
            reason: reason.into(),
        }
    }

    fn value(&mut self, name: &'a str) -> Result<&'a toml::Value, RulesError> {
        let value = self
            .table
            .get(name)
            .ok_or_else(|| self.invalid(name, "is missing"))?;
        self.taken.push(name);
        Ok(value)
    }

    fn section(&mut self, name: &'a str) -> Result<Section<'a>, RulesError> {
        match self.value(name)? {
            toml::Value::Table(table) => Ok(Section {
                path: self.key(name),
                table,
                taken: Vec::new(),
            }),
            _ => Err(self.invalid(name, "must be a table")),
        }
    }

    fn string(&mut self, name: &'a str) -> Result<&'a str, RulesError> {
        match self.value(name)? {
            toml::Value::String(s) => Ok(s),
            _ => Err(self.invalid(name, "must be a string")),
        }
    }

    /// A decimal of zero or more, written as a string (or an integer).
    fn decimal(&mut self, name: &'a str) -> Result<Decimal, RulesError> {
        let value = self.value(name)?;
        decimal_value(value).map_err(|reason| self.invalid(name, reason))
    }

    fn hnv(&mut self, name: &'a str) -> Result<Hnv, RulesError> {
        let value = self.value(name)?;
        hnv_value(value).map_err(|reason| self.invalid(name, reason))
    }

    fn integer<T>(&mut self, name: &'a str, min: T, max: T) -> Result<T, RulesError>
    where
        T: TryFrom<i64> + PartialOrd + std::fmt::Display + Copy,
    {
        let range = || format!("must be an integer from {min} to {max}");
        match self.value(name)? {
            toml::Value::Integer(i) => T::try_from(*i)
                .ok()
                .filter(|v| *v >= min && *v <= max)
                .ok_or_else(|| self.invalid(name, range())),
            _ => Err(self.invalid(name, range())),
        }
    }

    /// A table of names to amounts, not empty.
    fn amounts(&mut self, name: &'a str) -> Result<BTreeMap<String, Hnv>, RulesError> {
        let table = self.section(name)?;
        if table.table.is_empty() {
            return Err(self.invalid(name, "must name at least one entry"));
        }
        let mut amounts = BTreeMap::new();
        for (key, value) in table.table {
            check_name(key).map_err(|reason| table.invalid(key, reason))?;
            let amount = hnv_value(value).map_err(|reason| table.invalid(key, reason))?;
            amounts.insert(key.clone(), amount);
        }
        Ok(amounts)
    }

    /// An array of `{ name, hnv }` tables, not empty, names unique.
    fn milestones(&mut self, name: &'a str) -> Result<Vec<(String, Hnv)>, RulesError> {
        let toml::Value::Array(items) = self.value(name)? else {
            return Err(self.invalid(name, "must be an array of `{ name, hnv }` tables"));
        };
        if items.is_empty() {
            return Err(self.invalid(name, "must name at least one milestone"));
        }
        let mut milestones: Vec<(String, Hnv)> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key(name));
            let toml::Value::Table(table) = item else {
                return Err(RulesError::Invalid {
                    key: path,
                    reason: "must be a `{ name, hnv }` table".into(),
                });
            };
            let mut entry = Section {
                path,
                table,
                taken: Vec::new(),
            };
            let milestone = entry.string("name")?;
            check_name(milestone).map_err(|reason| entry.invalid("name", reason))?;
            if milestones.iter().any(|(known, _)| known == milestone) {
                return Err(entry.invalid("name", format!("`{milestone}` is listed twice")));
            }
            let hnv = entry.hnv("hnv")?;
            entry.finish()?;
            milestones.push((milestone.to_owned(), hnv));
        }
        Ok(milestones)
    }

    /// Refuses the keys nobody read (typos, settings this version does not know).
    fn finish(self) -> Result<(), RulesError> {
        match self
            .table
            .keys()
            .find(|key| !self.taken.contains(&key.as_str()))
        {
            Some(key) => Err(self.invalid(key, "is not a known key")),
            None => Ok(()),
        }
    }
}

/// Names of event types, tiers and milestones: `[a-z][a-z0-9_]*`, at most 64 bytes (never
/// all digits, so a payload's numeric level cannot be mistaken for a name).
fn check_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(
            "names must be 1 to 64 characters of `a-z`, `0-9` and `_`, starting with a letter"
                .into(),
        )
    }
}

fn decimal_value(value: &toml::Value) -> Result<Decimal, String> {
    let decimal = match value {
        toml::Value::String(s) => {
            Decimal::parse(s).map_err(|e| format!("is not an exact decimal: {e}"))?
        }
        toml::Value::Integer(i) => Decimal::from_int(*i),
        toml::Value::Float(_) => {
            return Err(
                "write it as a string (e.g. \"0.10\"): a TOML float is not exact".to_owned(),
            );
        }
        _ => return Err("must be a decimal string such as \"2.5\"".to_owned()),
    };
    if decimal.is_negative() {
        return Err("must not be negative".to_owned());
    }
    Ok(decimal)
}

fn hnv_value(value: &toml::Value) -> Result<Hnv, String> {
    decimal_value(value)?
        .to_hnv()
        .ok_or_else(|| "must not be negative".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_are_valid() {
        let rules = Rules::from_toml(DEFAULT_RULES).unwrap();
        assert_eq!(rules, Rules::shipped());
        assert_eq!(rules.coaching.len(), 4);
        assert_eq!(rules.booking.currency, "CAD");
    }
}
