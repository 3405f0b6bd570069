//! Rules validation: every key required, numbers exact and not negative, unknown keys
//! refused, each message naming the key.

use haven_rewards::{DEFAULT_RULES, Rules, RulesError};

fn refused(text: &str) -> String {
    match Rules::from_toml(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The shipped rules with `line` replaced (or removed with an empty `by`).
fn edited(line: &str, by: &str) -> String {
    assert!(DEFAULT_RULES.contains(line), "{line}");
    DEFAULT_RULES.replacen(line, by, 1)
}

#[test]
fn every_key_is_required() {
    for (line, key) in [
        (r#"version = "2026-12-07.1""#, "version"),
        (r#"currency = "CAD""#, "booking.currency"),
        (r#"hnv_per_unit = "2""#, "booking.hnv_per_unit"),
        (
            "multi_night_min_nights = 2",
            "booking.multi_night_min_nights",
        ),
        (r#"multi_night_bonus = "0.20""#, "booking.multi_night_bonus"),
        (r#"hnv = "50""#, "review.hnv"),
        ("min_rating = 4", "review.min_rating"),
        (r#"base_hnv = "50""#, "contribution.base_hnv"),
        (r#"min_quality = "0.5""#, "contribution.min_quality"),
        (r#"max_quality = "2.0""#, "contribution.max_quality"),
        (r#"apy = "0.10""#, "staking.apy"),
        ("accrual_period_days = 7", "staking.accrual_period_days"),
        (
            "[referral.hnv]\nbasic = \"100\"\nsilver = \"250\"\ngold = \"500\"\n",
            "referral",
        ),
    ] {
        let message = refused(&edited(line, ""));
        assert!(
            message.starts_with(&format!("rules key `{key}`")),
            "{line}: {message}"
        );
    }
    assert_eq!(
        refused(&edited(r#"base_hnv = "50""#, "")),
        "rules key `contribution.base_hnv`: is missing"
    );
    let first_milestone = "[[coaching.milestones]]\nname = \"first_session\"\nhnv = \"100\"\n";
    assert_eq!(
        refused(&edited(
            first_milestone,
            "[[coaching.milestones]]\nname = \"first_session\"\n"
        )),
        "rules key `coaching.milestones[0].hnv`: is missing"
    );
}

#[test]
fn negative_and_inexact_numbers_are_refused() {
    for (line, by, message) in [
        (
            r#"base_hnv = "50""#,
            r#"base_hnv = "-50""#,
            "rules key `contribution.base_hnv`: must not be negative",
        ),
        (
            r#"hnv_per_unit = "2""#,
            "hnv_per_unit = -2",
            "rules key `booking.hnv_per_unit`: must not be negative",
        ),
        (
            r#"gold = "500""#,
            r#"gold = "-500""#,
            "rules key `referral.hnv.gold`: must not be negative",
        ),
        (
            r#"hnv = "250""#,
            r#"hnv = "-1""#,
            "rules key `coaching.milestones[3].hnv`: must not be negative",
        ),
        (
            r#"apy = "0.10""#,
            "apy = 0.10",
            "rules key `staking.apy`: write it as a string (e.g. \"0.10\"): a TOML float is not exact",
        ),
        (
            r#"hnv = "50""#,
            r#"hnv = "fifty""#,
            "rules key `review.hnv`: is not an exact decimal: the amount has an invalid character at position 0",
        ),
        (
            r#"workshop = "75""#,
            r#"workshop = "75.0000000000000000001""#,
            "rules key `attendance.hnv.workshop`: is not an exact decimal: the amount has 19 fraction digits; at most 18 are allowed",
        ),
        (
            "min_rating = 4",
            "min_rating = 6",
            "rules key `review.min_rating`: must be an integer from 1 to 5",
        ),
        (
            "min_rating = 4",
            r#"min_rating = "4""#,
            "rules key `review.min_rating`: must be an integer from 1 to 5",
        ),
        (
            "multi_night_min_nights = 2",
            "multi_night_min_nights = 0",
            "rules key `booking.multi_night_min_nights`: must be an integer from 1 to 4294967295",
        ),
        (
            "accrual_period_days = 7",
            "accrual_period_days = 0",
            "rules key `staking.accrual_period_days`: must be an integer from 1 to 366",
        ),
        (
            r#"max_quality = "2.0""#,
            r#"max_quality = "0.4""#,
            "rules key `contribution.max_quality`: must not be below `min_quality`",
        ),
        (
            r#"currency = "CAD""#,
            r#"currency = "cad""#,
            "rules key `booking.currency`: must be a three-letter ISO 4217 code in upper case",
        ),
        (
            r#"version = "2026-12-07.1""#,
            r#"version = """#,
            "rules key `version`: must be 1 to 64 characters of letters, digits and `.-_+`",
        ),
    ] {
        assert_eq!(refused(&edited(line, by)), message, "{by}");
    }
    // Integers are exact, so they are accepted where a decimal is expected.
    assert!(Rules::from_toml(&edited(r#"hnv_per_unit = "2""#, "hnv_per_unit = 2")).is_ok());
}

#[test]
fn unknown_keys_and_bad_names_are_refused() {
    for (line, by, message) in [
        (
            "[booking]\n",
            "[booking]\nbonus = \"1\"\n",
            "rules key `booking.bonus`: is not a known key",
        ),
        (
            "[staking]\n",
            "[bonus]\nx = 1\n[staking]\n",
            "rules key `bonus`: is not a known key",
        ),
        (
            r#"name = "mid_program""#,
            "name = \"mid_program\"\nlevel = 2",
            "rules key `coaching.milestones[1].level`: is not a known key",
        ),
        (
            r#"name = "mid_program""#,
            r#"name = "first_session""#,
            "rules key `coaching.milestones[1].name`: `first_session` is listed twice",
        ),
        (
            r#"name = "mid_program""#,
            r#"name = "2""#,
            "rules key `coaching.milestones[1].name`: names must be 1 to 64 characters of `a-z`, `0-9` and `_`, starting with a letter",
        ),
        (
            r#"gold = "500""#,
            r#"Gold = "500""#,
            "rules key `referral.hnv.Gold`: names must be 1 to 64 characters of `a-z`, `0-9` and `_`, starting with a letter",
        ),
    ] {
        assert_eq!(refused(&edited(line, by)), message, "{by}");
    }
    let no_tiers = edited("basic = \"100\"\nsilver = \"250\"\ngold = \"500\"\n", "");
    assert_eq!(
        refused(&no_tiers),
        "rules key `referral.hnv`: must name at least one entry"
    );
    assert!(matches!(
        Rules::from_toml("version = "),
        Err(RulesError::Toml(_))
    ));
}

#[test]
fn rules_load_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        edited(r#"version = "2026-12-07.1""#, r#"version = "local-1""#),
    )
    .unwrap();
    assert_eq!(Rules::from_path(&path).unwrap().version(), "local-1");
    let missing = dir.path().join("missing.toml");
    let err = Rules::from_path(&missing).unwrap_err();
    assert!(matches!(err, RulesError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");
}

#[test]
fn the_staking_settings_are_exposed_for_the_accrual_job() {
    let rules = Rules::shipped();
    assert_eq!(rules.staking().apy().to_string(), "0.1");
    assert_eq!(rules.staking().accrual_period_days(), 7);
    assert_eq!(
        rules.staking().accrual_period(),
        chrono::TimeDelta::weeks(1)
    );
}
