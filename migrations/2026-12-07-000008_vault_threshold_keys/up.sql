-- A vault's FROST group key and which guardian holds which participant's share. Public data
-- only: the shares never leave the guardians' devices.
CREATE TABLE vault_threshold_keys (
    vault_id    UUID PRIMARY KEY REFERENCES vaults (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    verifying_key BYTEA NOT NULL CHECK (octet_length(verifying_key) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
