//! `Hnv` and `Decimal`: the text grammar, minimal display, exact arithmetic, serde.

use haven_rewards::{AmountError, Decimal, Hnv};

use crate::hnv;

#[test]
fn hnv_text_is_the_minimal_exact_decimal() {
    for (text, units) in [
        ("480", 480_000_000_000_000_000_000u128),
        ("239.976", 239_976_000_000_000_000_000),
        ("0", 0),
        ("0.000000000000000001", 1),
        ("1.5", 1_500_000_000_000_000_000),
        ("340282366920938463463.374607431768211455", u128::MAX),
    ] {
        let amount = Hnv::parse(text).unwrap();
        assert_eq!(amount.base_units(), units, "{text}");
        assert_eq!(amount.to_string(), text);
        assert_eq!(Hnv::from_base_units(units), amount);
    }
    // Trailing zeros parse but do not print.
    assert_eq!(hnv("480.000").to_string(), "480");
    assert_eq!(hnv("0.10").to_string(), "0.1");
    assert_eq!(Hnv::ZERO.to_string(), "0");
    assert_eq!(Hnv::DECIMALS, 18);
    assert_eq!(Hnv::from_whole(50), hnv("50"));
}

#[test]
fn hnv_refuses_signs_exponents_and_sloppy_text() {
    for (text, error) in [
        ("", AmountError::Empty),
        ("-5", AmountError::Signed),
        ("+5", AmountError::Signed),
        ("1e3", AmountError::Exponent),
        ("1.5E2", AmountError::Exponent),
        (".5", AmountError::Malformed),
        ("5.", AmountError::Malformed),
        ("1.2.3", AmountError::Malformed),
        ("007", AmountError::LeadingZero),
        ("NaN", AmountError::InvalidCharacter { position: 0 }),
        ("inf", AmountError::InvalidCharacter { position: 0 }),
        (" 5", AmountError::InvalidCharacter { position: 0 }),
        ("5 ", AmountError::InvalidCharacter { position: 1 }),
        ("1,5", AmountError::InvalidCharacter { position: 1 }),
        (
            "0.0000000000000000001",
            AmountError::TooManyDecimals { found: 19 },
        ),
        (
            "340282366920938463463.374607431768211456",
            AmountError::Overflow,
        ),
        ("1000000000000000000000000", AmountError::Overflow),
    ] {
        assert_eq!(Hnv::parse(text), Err(error), "{text:?}");
    }
    assert_eq!(Hnv::parse(&"1".repeat(101)), Err(AmountError::TooLong));
}

#[test]
fn hnv_arithmetic_is_checked() {
    let a = hnv("1.5");
    let b = hnv("0.25");
    assert_eq!(a.checked_add(b), Some(hnv("1.75")));
    assert_eq!(a.checked_sub(b), Some(hnv("1.25")));
    assert_eq!(b.checked_sub(a), None);
    assert_eq!(b.saturating_sub(a), Hnv::ZERO);
    assert_eq!(Hnv::MAX.checked_add(Hnv::from_base_units(1)), None);
    assert!(Hnv::ZERO.is_zero() && !a.is_zero());
    assert!(a > b);
}

#[test]
fn decimals_follow_the_json_number_grammar() {
    for (text, shown) in [
        ("99.99", "99.99"),
        ("-5", "-5"),
        ("0", "0"),
        ("-0", "0"),
        ("200.0", "200"),
        ("1.5e2", "150"),
        ("15E-1", "1.5"),
        ("1e+2", "100"),
        ("1e-18", "0.000000000000000001"),
        ("0.1e1", "1"),
        ("0e999999999", "0"),
        ("100000000000000000000000e-10", "10000000000000"),
    ] {
        assert_eq!(Decimal::parse(text).unwrap().to_string(), shown, "{text}");
    }
    for (text, error) in [
        ("NaN", AmountError::InvalidCharacter { position: 0 }),
        ("Infinity", AmountError::InvalidCharacter { position: 0 }),
        ("-Infinity", AmountError::InvalidCharacter { position: 1 }),
        ("+1", AmountError::Signed),
        ("--1", AmountError::InvalidCharacter { position: 1 }),
        ("01", AmountError::LeadingZero),
        ("1e", AmountError::Malformed),
        ("1e-19", AmountError::TooManyDecimals { found: 19 }),
        ("1.5e-18", AmountError::TooManyDecimals { found: 19 }),
        (
            "0.0000000000000000001",
            AmountError::TooManyDecimals { found: 19 },
        ),
        ("1e21", AmountError::Overflow),
        ("1e999999999", AmountError::Overflow),
        ("170141183460469231732", AmountError::Overflow),
        ("0x10", AmountError::InvalidCharacter { position: 1 }),
    ] {
        assert_eq!(Decimal::parse(text), Err(error), "{text:?}");
    }
    assert_eq!(
        Decimal::parse("170141183460469231731.687303715884105727").unwrap(),
        Decimal::MAX
    );
}

#[test]
fn decimal_arithmetic_is_exact() {
    let d = |s: &str| Decimal::parse(s).unwrap();
    // The classic float traps.
    assert_eq!(d("0.1").checked_add(d("0.2")), Some(d("0.3")));
    assert_eq!(d("1.1").checked_mul(d("1.1")), Some(d("1.21")));
    assert_eq!(d("99.99").checked_mul(d("2.4")), Some(d("239.976")));
    assert_eq!(d("0.3").checked_sub(d("0.1")), Some(d("0.2")));
    // Products beyond 18 digits truncate toward zero, whatever the sign.
    assert_eq!(
        d("0.000000000000000001").checked_mul(d("0.5")),
        Some(Decimal::ZERO)
    );
    assert_eq!(
        d("-0.000000000000000003").checked_mul(d("0.5")),
        Some(d("-0.000000000000000001"))
    );
    assert_eq!(d("-2").checked_mul(d("-1.5")), Some(d("3")));
    assert_eq!(Decimal::MAX.checked_mul(d("2")), None);
    assert_eq!(Decimal::MAX.checked_add(d("0.000000000000000001")), None);
    // Ordering is by value.
    assert!(d("0.5") < d("1") && d("-1") < d("0") && d("2.0") == d("2"));
    assert_eq!(d("2.5").clamp(d("0.5"), d("2.0")), d("2"));
    assert!(d("3").is_integer() && !d("3.5").is_integer());
    assert_eq!(d("3.9").trunc_int(), 3);
    assert_eq!(d("12.5").to_hnv(), Some(hnv("12.5")));
    assert_eq!(d("-1").to_hnv(), None);
    assert_eq!(hnv("12.5").to_decimal(), Some(d("12.5")));
    assert_eq!(Hnv::MAX.to_decimal(), None);
}

#[test]
fn serde_uses_the_decimal_text() {
    let amount = hnv("239.976");
    assert_eq!(serde_json::to_string(&amount).unwrap(), r#""239.976""#);
    assert_eq!(serde_json::from_str::<Hnv>(r#""239.976""#).unwrap(), amount);
    // A number would be ambiguous (HNV or base units?) and lossy.
    assert!(serde_json::from_str::<Hnv>("239.976").is_err());
    assert!(serde_json::from_str::<Hnv>("240").is_err());

    let price = Decimal::parse("-99.99").unwrap();
    assert_eq!(serde_json::to_string(&price).unwrap(), r#""-99.99""#);
    assert_eq!(
        serde_json::from_str::<Decimal>(r#""-99.99""#).unwrap(),
        price
    );
    assert_eq!(
        serde_json::from_str::<Decimal>("200").unwrap(),
        Decimal::from_int(200)
    );
    assert!(serde_json::from_str::<Decimal>("99.99").is_err());
}
