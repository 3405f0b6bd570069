-- Lease-based nonce bookkeeping: one row per (chain, address) account, one row per nonce the
-- store still has to remember (free, leased, or committed above the chain floor).

CREATE TABLE nonce_accounts (
    chain_id    BIGINT NOT NULL CHECK (chain_id >= 0),
    address     BYTEA NOT NULL CHECK (octet_length(address) = 20),
    next_nonce  BIGINT NOT NULL DEFAULT 0 CHECK (next_nonce >= 0),
    chain_floor BIGINT CHECK (chain_floor >= 0),
    last_sync   TIMESTAMPTZ,
    PRIMARY KEY (chain_id, address)
);

CREATE TABLE nonce_slots (
    chain_id   BIGINT NOT NULL,
    address    BYTEA NOT NULL,
    nonce      BIGINT NOT NULL CHECK (nonce >= 0),
    state      TEXT NOT NULL CHECK (state IN ('free', 'leased', 'committed')),
    lease_id   UUID,
    leased_at  TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (chain_id, address, nonce),
    FOREIGN KEY (chain_id, address) REFERENCES nonce_accounts (chain_id, address) ON DELETE CASCADE,
    CHECK ((state = 'free') = (lease_id IS NULL)),
    CHECK ((state = 'leased') = (expires_at IS NOT NULL))
);
CREATE INDEX nonce_slots_free_idx ON nonce_slots (chain_id, address, nonce) WHERE state = 'free';
CREATE INDEX nonce_slots_leased_idx ON nonce_slots (chain_id, address, expires_at) WHERE state = 'leased';

-- reserve and release as one statement each: the account row lock is held only inside the
-- server, for one round trip.
CREATE FUNCTION nonce_reserve(p_chain BIGINT, p_address BYTEA, p_lease UUID, p_ttl DOUBLE PRECISION)
RETURNS TABLE (r_nonce BIGINT, r_expires_at TIMESTAMPTZ, r_chain_synced BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    acct nonce_accounts%ROWTYPE;
    picked BIGINT;
    expiry TIMESTAMPTZ := now() + make_interval(secs => p_ttl);
BEGIN
    INSERT INTO nonce_accounts AS a (chain_id, address) VALUES (p_chain, p_address)
        ON CONFLICT (chain_id, address) DO UPDATE SET next_nonce = a.next_nonce
        RETURNING a.* INTO acct;
    -- Expired leases go back to the free set, or nowhere when the chain has passed them.
    DELETE FROM nonce_slots s
        WHERE s.chain_id = p_chain AND s.address = p_address AND s.state = 'leased'
          AND s.expires_at <= now() AND s.nonce < COALESCE(acct.chain_floor, 0);
    UPDATE nonce_slots s SET state = 'free', lease_id = NULL, leased_at = NULL, expires_at = NULL
        WHERE s.chain_id = p_chain AND s.address = p_address AND s.state = 'leased' AND s.expires_at <= now();
    SELECT s.nonce INTO picked FROM nonce_slots s
        WHERE s.chain_id = p_chain AND s.address = p_address AND s.state = 'free'
        ORDER BY s.nonce LIMIT 1;
    IF picked IS NULL THEN
        picked := acct.next_nonce;
        UPDATE nonce_accounts a SET next_nonce = a.next_nonce + 1
            WHERE a.chain_id = p_chain AND a.address = p_address;
        INSERT INTO nonce_slots (chain_id, address, nonce, state, lease_id, leased_at, expires_at)
            VALUES (p_chain, p_address, picked, 'leased', p_lease, now(), expiry);
    ELSE
        UPDATE nonce_slots s SET state = 'leased', lease_id = p_lease, leased_at = now(), expires_at = expiry
            WHERE s.chain_id = p_chain AND s.address = p_address AND s.nonce = picked;
    END IF;
    RETURN QUERY SELECT picked, expiry, acct.chain_floor IS NOT NULL;
END;
$$;

-- Returns 'released', 'committed' (the lease committed: refused) or 'not_held'.
CREATE FUNCTION nonce_release(p_chain BIGINT, p_address BYTEA, p_nonce BIGINT, p_lease UUID)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    acct nonce_accounts%ROWTYPE;
    slot nonce_slots%ROWTYPE;
BEGIN
    SELECT * INTO acct FROM nonce_accounts a
        WHERE a.chain_id = p_chain AND a.address = p_address FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_held';
    END IF;
    SELECT * INTO slot FROM nonce_slots s
        WHERE s.chain_id = p_chain AND s.address = p_address AND s.nonce = p_nonce FOR UPDATE;
    IF NOT FOUND OR slot.lease_id IS DISTINCT FROM p_lease THEN
        RETURN 'not_held';
    END IF;
    IF slot.state = 'committed' THEN
        RETURN 'committed';
    END IF;
    IF p_nonce < COALESCE(acct.chain_floor, 0) THEN
        DELETE FROM nonce_slots s WHERE s.chain_id = p_chain AND s.address = p_address AND s.nonce = p_nonce;
    ELSE
        UPDATE nonce_slots s SET state = 'free', lease_id = NULL, leased_at = NULL, expires_at = NULL
            WHERE s.chain_id = p_chain AND s.address = p_address AND s.nonce = p_nonce;
    END IF;
    RETURN 'released';
END;
$$;
