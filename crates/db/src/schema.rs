//! The diesel table definitions, kept by hand in step with `migrations/`.
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        name -> Text,
        owner_id -> Uuid,
        key_hash -> Bytea,
        display_prefix -> Text,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        member_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> Int8,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        severity -> Text,
        request_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        details -> Jsonb,
        created_at -> Timestamptz,
        prev_hash -> Bytea,
        hash -> Bytea,
    }
}

diesel::table! {
    error_logs (id) {
        id -> Int8,
        error_id -> Uuid,
        request_id -> Nullable<Text>,
        code -> Text,
        status -> Int2,
        method -> Nullable<Text>,
        path -> Nullable<Text>,
        message -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> users (owner_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_keys, audit_log, error_logs);

diesel::table! {
    transactions (tx_id) {
        tx_id -> Text,
        kind -> Text,
        chain_id -> Int8,
        token -> Bytea,
        from_address -> Bytea,
        to_address -> Nullable<Bytea>,
        amount -> Numeric,
        status -> Text,
        nonce -> Nullable<Int8>,
        hash -> Nullable<Bytea>,
        raw_tx -> Nullable<Bytea>,
        previous_hashes -> Array<Bytea>,
        gas_limit -> Int8,
        max_fee_per_gas -> Nullable<Numeric>,
        max_priority_fee_per_gas -> Nullable<Numeric>,
        attempts -> Int4,
        replacements -> Int4,
        error -> Nullable<Text>,
        block_number -> Nullable<Int8>,
        block_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        broadcast_at -> Nullable<Timestamptz>,
        confirmed_at -> Nullable<Timestamptz>,
        version -> Int8,
        reorgs -> Int4,
        holder -> Nullable<Bytea>,
    }
}

diesel::table! {
    transaction_monitoring (id) {
        id -> Uuid,
        rule_id -> Text,
        event_type -> Text,
        severity -> Text,
        subject -> Text,
        user_id -> Nullable<Text>,
        description -> Text,
        metadata -> Jsonb,
        event_id -> Text,
        event_ts -> Timestamptz,
        created_at -> Timestamptz,
        state -> Text,
        reviewed -> Bool,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<Timestamptz>,
        notes -> Jsonb,
        delivered_at -> Nullable<Timestamptz>,
        delivery_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_delivery_error -> Nullable<Text>,
        delivered_sinks -> Array<Text>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        fingerprint -> Bytea,
        state -> Text,
        lock_token -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        status -> Nullable<Int2>,
        header_names -> Nullable<Array<Text>>,
        header_values -> Nullable<Array<Bytea>>,
        body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_replay (source, id) {
        source -> Text,
        id -> Text,
        body_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        url -> Text,
        description -> Text,
        enabled -> Bool,
        disabled_at -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoint_secrets (id) {
        id -> Int8,
        endpoint_id -> Uuid,
        secret -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_messages (id) {
        id -> Text,
        endpoint_id -> Uuid,
        event_type -> Text,
        payload -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        message_id -> Text,
        attempt -> Int4,
        status -> Text,
        next_attempt_at -> Timestamptz,
        lease_token -> Nullable<Uuid>,
        claims -> Int4,
        response_status -> Nullable<Int2>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        attempted_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(webhook_endpoint_secrets -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_messages -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> webhook_messages (message_id));
diesel::allow_tables_to_appear_in_same_query!(
    webhook_endpoints,
    webhook_endpoint_secrets,
    webhook_messages,
    webhook_deliveries
);

diesel::table! {
    auth_sessions (family_id) {
        family_id -> Uuid,
        user_id -> Uuid,
        device -> Text,
        ip -> Nullable<Text>,
        user_agent -> Text,
        created_at -> Timestamptz,
        last_active_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    auth_refresh_tokens (jti) {
        jti -> Uuid,
        family_id -> Uuid,
        state -> Text,
        issued_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        replaced_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    auth_denied_tokens (jti) {
        jti -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    auth_user_not_before (user_id) {
        user_id -> Uuid,
        not_before -> Timestamptz,
    }
}

diesel::joinable!(auth_refresh_tokens -> auth_sessions (family_id));
diesel::allow_tables_to_appear_in_same_query!(
    auth_sessions,
    auth_refresh_tokens,
    auth_denied_tokens,
    auth_user_not_before
);
