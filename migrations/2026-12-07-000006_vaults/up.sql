-- Guardian vaults (haven-vault's VaultStore): vaults and their policies, single-use
-- invitations (the code's SHA-256 only), guardians and their ed25519 device keys, requests
-- waiting for M approvals, and the guardians' signed decisions.
--
-- Timestamps come from the application with nanosecond precision; TIMESTAMPTZ keeps
-- microseconds, so each one carries its sub-microsecond remainder and reads back exactly.
-- Amounts are exact: they live in the policy and the operation as decimal strings of base
-- units, never as floats.

CREATE TABLE vaults (
    id                UUID PRIMARY KEY,
    name              TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- haven_vault::Policy as JSON: {"threshold": M, "covered": {kind: "min amount"}}.
    policy            JSONB NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    created_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (created_at_sub_us BETWEEN 0 AND 999)
);

-- A guardian is one device's membership of one vault; removal keeps the row.
CREATE TABLE vault_guardians (
    id                UUID PRIMARY KEY,
    vault_id          UUID NOT NULL REFERENCES vaults (id),
    device_key        BYTEA NOT NULL CHECK (octet_length(device_key) = 32),
    joined_at         TIMESTAMPTZ NOT NULL,
    joined_at_sub_us  SMALLINT NOT NULL DEFAULT 0 CHECK (joined_at_sub_us BETWEEN 0 AND 999),
    removed_at        TIMESTAMPTZ,
    removed_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (removed_at_sub_us BETWEEN 0 AND 999)
);
CREATE INDEX vault_guardians_vault_idx ON vault_guardians (vault_id, joined_at);
-- one device counts once: two active guardians of a vault never share a key
CREATE UNIQUE INDEX vault_guardians_active_device_key
    ON vault_guardians (vault_id, device_key) WHERE removed_at IS NULL;

-- An invitation admits one device to one vault, once, before it expires.
CREATE TABLE vault_invitations (
    id                UUID PRIMARY KEY,
    vault_id          UUID NOT NULL REFERENCES vaults (id),
    code_hash         BYTEA NOT NULL UNIQUE CHECK (octet_length(code_hash) = 32),
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    created_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (created_at_sub_us BETWEEN 0 AND 999),
    expires_at        TIMESTAMPTZ NOT NULL,
    expires_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (expires_at_sub_us BETWEEN 0 AND 999),
    used_at           TIMESTAMPTZ,
    used_at_sub_us    SMALLINT NOT NULL DEFAULT 0 CHECK (used_at_sub_us BETWEEN 0 AND 999),
    used_by           UUID UNIQUE REFERENCES vault_guardians (id),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX vault_invitations_vault_idx ON vault_invitations (vault_id);

-- An operation waiting for the vault's guardians. It leaves 'open' exactly once, by a
-- compare-and-set; 'released' is set together with 'approved' and never otherwise.
CREATE TABLE vault_requests (
    id                UUID PRIMARY KEY,
    vault_id          UUID NOT NULL REFERENCES vaults (id),
    -- haven_vault::Operation as JSON text, exactly as serialised (TEXT, not JSONB: JSONB
    -- refuses some strings an operation's parameters may hold, e.g. "\u0000").
    operation         TEXT NOT NULL,
    -- the canonical JSON of the operation, exactly the bytes that were hashed and signed
    canonical         TEXT NOT NULL,
    hash              BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    requester         TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    created_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (created_at_sub_us BETWEEN 0 AND 999),
    expires_at        TIMESTAMPTZ NOT NULL,
    expires_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (expires_at_sub_us BETWEEN 0 AND 999),
    state             TEXT NOT NULL CHECK (state IN ('open', 'approved', 'rejected', 'expired')),
    released          BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK (NOT released OR state = 'approved')
);
CREATE INDEX vault_requests_vault_idx ON vault_requests (vault_id, state, created_at);
-- due_for_expiry: open requests by expiry
CREATE INDEX vault_requests_open_expiry_idx ON vault_requests (expires_at) WHERE state = 'open';

-- One guardian's signed decision on one request. Removing the guardian while the request is
-- open voids it (voided_at); a guardian has at most one counting decision per request.
CREATE TABLE vault_decisions (
    id                BIGSERIAL PRIMARY KEY,
    request_id        UUID NOT NULL REFERENCES vault_requests (id),
    guardian_id       UUID NOT NULL REFERENCES vault_guardians (id),
    kind              TEXT NOT NULL CHECK (kind IN ('approve', 'reject')),
    signature         BYTEA NOT NULL CHECK (octet_length(signature) = 64),
    decided_at        TIMESTAMPTZ NOT NULL,
    decided_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (decided_at_sub_us BETWEEN 0 AND 999),
    voided_at         TIMESTAMPTZ,
    voided_at_sub_us  SMALLINT NOT NULL DEFAULT 0 CHECK (voided_at_sub_us BETWEEN 0 AND 999)
);
CREATE UNIQUE INDEX vault_decisions_one_counting
    ON vault_decisions (request_id, guardian_id) WHERE voided_at IS NULL;
CREATE INDEX vault_decisions_guardian_idx ON vault_decisions (guardian_id);
