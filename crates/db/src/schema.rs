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
