-- Users, API keys, the hash-chained audit log and the log of server errors.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Only the keyed hash and a short display prefix are stored, never the key itself.
CREATE TABLE api_keys (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL,
    owner_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash       BYTEA NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    scopes         TEXT[] NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ,
    last_used_at   TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ,
    CHECK (octet_length(key_hash) = 32)
);
CREATE INDEX api_keys_owner_idx ON api_keys (owner_id);

-- Append-only: seq is assigned under an advisory lock (no gaps), hash = SHA-256(prev_hash || row).
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY CHECK (seq > 0),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    severity   TEXT NOT NULL CHECK (severity IN ('INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    request_id TEXT,
    ip         TEXT,
    details    JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    prev_hash  BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, created_at);
CREATE INDEX audit_log_action_idx ON audit_log (action, created_at);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Every 5xx answered, under the error_id the client saw. Messages are redacted before insert.
CREATE TABLE error_logs (
    id         BIGSERIAL PRIMARY KEY,
    error_id   UUID NOT NULL UNIQUE,
    request_id TEXT,
    code       TEXT NOT NULL,
    status     SMALLINT NOT NULL,
    method     TEXT,
    path       TEXT,
    message    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX error_logs_created_idx ON error_logs (created_at);
