//! The worker configuration's unit tests.
use super::*;

/// Every key the worker reads has its default in `DEFAULTS`: the defaults alone (no
/// file, no environment) give a whole, valid configuration.
#[test]
fn the_defaults_alone_are_a_whole_configuration() {
    let own: Own = figment::Figment::from(figment::providers::Serialized::defaults(DEFAULTS))
        .extract()
        .unwrap_or_else(|e| panic!("a key without a default: {e}"));
    assert_eq!(own.worker_tick_secs, 60);
    assert!(FraudDeliveryConfig::from_own(&own).is_ok());
    assert!(ChainJobConfig::from_own(&own).is_ok_and(|c| c.settings().is_err()));
    assert!(variables().contains(&"HAVEN_INBOUND_RELAY".to_owned()));
}

#[test]
fn inbound_relay_routes_parse_and_bad_ones_name_the_variable() {
    let a = "0190a6f0-0000-7000-8000-000000000001";
    let b = "0190a6f0-0000-7000-8000-000000000002";
    let config = InboundRelayConfig::parse(&format!(" aurora={a}, {b} ; tribe={a};"), 5).unwrap();
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes["aurora"].len(), 2);
    assert_eq!(config.routes["tribe"][0].to_string(), a);
    assert!(InboundRelayConfig::parse("", 5).unwrap().routes.is_empty());
    for bad in [
        "aurora".to_owned(),
        format!("au rora={a}"),
        "aurora=not-a-uuid".to_owned(),
        "aurora=".to_owned(),
        format!("aurora={a};aurora={b}"),
    ] {
        let e = InboundRelayConfig::parse(&bad, 5).unwrap_err().to_string();
        assert!(e.contains("HAVEN_INBOUND_RELAY"), "{bad}: {e}");
    }
    let e = InboundRelayConfig::parse("", 0).unwrap_err().to_string();
    assert!(e.contains("HAVEN_INBOUND_RELAY_SECS"), "{e}");
}

#[test]
fn the_chain_job_names_every_unset_variable_and_runs_when_all_are_set() {
    let mut chain = ChainJobConfig::off();
    assert_eq!(
        chain.settings().err(),
        Some(vec![
            "HAVEN_TOKEN_ADDRESS",
            "HAVEN_CHAIN_WALLET",
            "HAVEN_MASTER_KEYS"
        ])
    );
    chain.token_address = Some(Address::repeat_byte(1));
    chain.wallet = WalletId::new("minter").ok();
    assert_eq!(chain.settings().err(), Some(vec!["HAVEN_MASTER_KEYS"]));
    chain.master_keys = Some("v1:a2V5".to_owned().into());
    let settings = chain.settings().ok();
    assert_eq!(settings.map(|s| s.token), Some(Address::repeat_byte(1)));
}

#[test]
fn plain_smtp_is_refused_unless_the_relay_is_local() {
    use haven_fraud::SmtpSecurity;
    assert_eq!(
        smtp_security("none", "localhost").ok(),
        Some(SmtpSecurity::None)
    );
    assert_eq!(
        smtp_security("none", "127.0.0.1").ok(),
        Some(SmtpSecurity::None)
    );
    assert_eq!(
        smtp_security("tls", "smtp.example.com").ok(),
        Some(SmtpSecurity::Tls)
    );
    for (raw, host) in [
        ("none", "smtp.example.com"),
        ("none", "10.0.0.5"),
        ("ssl", "localhost"),
    ] {
        match smtp_security(raw, host) {
            Err(ConfigError::Invalid { var, .. }) => {
                assert_eq!(var, "HAVEN_FRAUD_SMTP_SECURITY", "{raw} {host}")
            }
            other => panic!("{raw} {host}: {other:?}"),
        }
    }
}

#[test]
fn webhook_destinations_parse_and_plain_http_is_refused_in_production() {
    let parsed =
        WebhookDeliveryConfig::parse(Environment::Development, " 127.0.0.1/32, ::1 ", true, 2)
            .unwrap();
    assert_eq!(
        parsed.allow,
        vec!["127.0.0.1/32".parse().unwrap(), "::1".parse().unwrap()]
    );
    assert!(parsed.allow_http);
    assert_eq!(parsed.interval, Duration::from_secs(2));
    assert_eq!(
        WebhookDeliveryConfig::parse(Environment::Development, "", false, 1).unwrap(),
        WebhookDeliveryConfig::default()
    );
    for (allow, http, secs, var) in [
        ("localhost", false, 5, "HAVEN_WEBHOOK_ALLOW"),
        ("10.0.0.0/33", false, 5, "HAVEN_WEBHOOK_ALLOW"),
        ("", true, 5, "HAVEN_WEBHOOK_ALLOW_HTTP"),
        ("", false, 0, "HAVEN_WEBHOOK_DELIVERY_SECS"),
    ] {
        match WebhookDeliveryConfig::parse(Environment::Production, allow, http, secs) {
            Err(ConfigError::Invalid { var: got, .. }) => assert_eq!(got, var),
            other => panic!("{allow:?} {http} {secs}: {other:?}"),
        }
    }
}
