-- Custody: one row per wallet, one row per key version. Only ciphertexts are stored; the
-- database never sees a private key or an unwrapped data key.
--
-- Timestamps come from the application with nanosecond precision; TIMESTAMPTZ keeps
-- microseconds, so each one carries its sub-microsecond remainder and reads back exactly.
-- Ids are compared byte-wise (COLLATE "C") so that keyset pages follow the same order in
-- every store implementation.

CREATE TABLE wallets (
    id                TEXT COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    chain             TEXT NOT NULL CHECK (chain IN ('evm', 'solana')),
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    current_version   INTEGER NOT NULL CHECK (current_version >= 1),
    metadata          JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL,
    created_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (created_at_sub_us BETWEEN 0 AND 999),
    updated_at        TIMESTAMPTZ NOT NULL,
    updated_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (updated_at_sub_us BETWEEN 0 AND 999)
);
-- list(filter, page): equality on chain/status, then keyset on id
CREATE INDEX wallets_chain_status_id ON wallets (chain, status, id);
CREATE INDEX wallets_status_id ON wallets (status, id);

CREATE TABLE wallet_keys (
    wallet_id         TEXT COLLATE "C" NOT NULL REFERENCES wallets (id),
    version           INTEGER NOT NULL CHECK (version >= 1),
    address           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
    key_nonce         BYTEA NOT NULL CHECK (octet_length(key_nonce) = 12),
    key_ciphertext    BYTEA NOT NULL,            -- AES-256-GCM ciphertext || 16-byte tag
    kek_version       INTEGER NOT NULL CHECK (kek_version >= 0),
    wrapped_dek       BYTEA NOT NULL,            -- Vault: the 'vault:vN:…' text as bytes
    created_at        TIMESTAMPTZ NOT NULL,
    created_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (created_at_sub_us BETWEEN 0 AND 999),
    retired_at        TIMESTAMPTZ,
    retired_at_sub_us SMALLINT NOT NULL DEFAULT 0 CHECK (retired_at_sub_us BETWEEN 0 AND 999),
    PRIMARY KEY (wallet_id, version),
    CHECK ((status = 'active') = (retired_at IS NULL))
);
-- at most one signing key per wallet, whatever the writers do
CREATE UNIQUE INDEX wallet_keys_one_active ON wallet_keys (wallet_id) WHERE status = 'active';
-- keys_to_rewrap / count_keys_to_rewrap: range on kek_version, keyset on (wallet_id, version)
CREATE INDEX wallet_keys_rewrap ON wallet_keys (kek_version, wallet_id, version);

-- Key rows are never deleted and a sealed key never changes: only the wrapped data key (and
-- its KEK version), the status and the retirement time move. A revoked wallet stays revoked.
CREATE FUNCTION wallet_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'wallet_keys rows are never deleted';
    END IF;
    IF NEW.wallet_id IS DISTINCT FROM OLD.wallet_id OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.address IS DISTINCT FROM OLD.address OR NEW.key_nonce IS DISTINCT FROM OLD.key_nonce
       OR NEW.key_ciphertext IS DISTINCT FROM OLD.key_ciphertext
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'a sealed key of wallet % version % is immutable', OLD.wallet_id, OLD.version;
    END IF;
    IF OLD.status <> 'active' AND NEW.status = 'active' THEN
        RAISE EXCEPTION 'key % of wallet % cannot become active again', OLD.version, OLD.wallet_id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER wallet_keys_guard BEFORE UPDATE OR DELETE ON wallet_keys
    FOR EACH ROW EXECUTE FUNCTION wallet_keys_guard();

CREATE FUNCTION wallets_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'wallets rows are never deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.chain IS DISTINCT FROM OLD.chain THEN
        RAISE EXCEPTION 'the id and chain of wallet % are immutable', OLD.id;
    END IF;
    IF OLD.status = 'revoked' AND NEW.status <> 'revoked' THEN
        RAISE EXCEPTION 'wallet % is revoked for good', OLD.id;
    END IF;
    IF NEW.current_version < OLD.current_version THEN
        RAISE EXCEPTION 'the current key version of wallet % never goes back', OLD.id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER wallets_guard BEFORE UPDATE OR DELETE ON wallets
    FOR EACH ROW EXECUTE FUNCTION wallets_guard();
