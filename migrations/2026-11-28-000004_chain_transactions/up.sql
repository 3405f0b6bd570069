-- The chain crate's `transactions`: one row per tx_id (the idempotency key of a mint, burn or
-- transfer), from `queued` through `signed` and `broadcast` to `confirmed`, `failed` or
-- `replaced`. The unique tx_id decides who signs; `version` makes every update a
-- compare-and-set, so a recorded signed transaction is never silently overwritten.
--
-- Token amounts are uint256 and fees uint128: NUMERIC with no fractional digits holds both
-- exactly. Addresses and hashes are raw bytes.

CREATE TABLE transactions (
    tx_id                    TEXT COLLATE "C" PRIMARY KEY CHECK (octet_length(tx_id) BETWEEN 1 AND 256),
    kind                     TEXT NOT NULL CHECK (kind IN ('mint', 'burn', 'transfer')),
    chain_id                 BIGINT NOT NULL CHECK (chain_id >= 0),
    token                    BYTEA NOT NULL CHECK (octet_length(token) = 20),
    from_address             BYTEA NOT NULL CHECK (octet_length(from_address) = 20),
    to_address               BYTEA CHECK (octet_length(to_address) = 20),
    amount                   NUMERIC(78, 0) NOT NULL CHECK (amount >= 0),
    status                   TEXT NOT NULL
        CHECK (status IN ('queued', 'signed', 'broadcast', 'confirmed', 'failed', 'replaced')),
    nonce                    BIGINT CHECK (nonce >= 0),
    hash                     BYTEA CHECK (octet_length(hash) = 32),
    raw_tx                   BYTEA,                  -- the signed EIP-2718 envelope, rebroadcast verbatim
    previous_hashes          BYTEA[] NOT NULL DEFAULT '{}', -- fee-bumped versions with the same nonce
    gas_limit                BIGINT NOT NULL CHECK (gas_limit >= 0),
    max_fee_per_gas          NUMERIC(39, 0) CHECK (max_fee_per_gas >= 0),
    max_priority_fee_per_gas NUMERIC(39, 0) CHECK (max_priority_fee_per_gas >= 0),
    attempts                 INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    replacements             INTEGER NOT NULL DEFAULT 0 CHECK (replacements >= 0),
    error                    TEXT,
    block_number             BIGINT CHECK (block_number >= 0),
    block_hash               BYTEA CHECK (octet_length(block_hash) = 32),
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    broadcast_at             TIMESTAMPTZ,
    confirmed_at             TIMESTAMPTZ,
    version                  BIGINT NOT NULL CHECK (version >= 1),
    -- a signed transaction always has the nonce it was signed with
    CHECK (raw_tx IS NULL OR (nonce IS NOT NULL AND hash IS NOT NULL))
);
-- list_by_status (operator views, the monitoring cycle): equality on status, oldest first
CREATE INDEX transactions_status_created ON transactions (status, created_at, tx_id);
-- looking a transaction up by the hash an explorer shows
CREATE INDEX transactions_hash ON transactions (hash) WHERE hash IS NOT NULL;
