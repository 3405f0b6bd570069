-- Refuses (the kind check fails) while burn_from or transfer_from rows exist: dropping them
-- would lose the record of an on-chain effect.
ALTER TABLE transactions DROP CONSTRAINT transactions_holder_kind_check;
ALTER TABLE transactions DROP COLUMN holder;
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('mint', 'burn', 'transfer'));
