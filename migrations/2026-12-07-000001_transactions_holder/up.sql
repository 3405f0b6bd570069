-- Burning and moving a custodial member's tokens by the operator wallet (`CUSTODIAN_ROLE`):
-- the kinds `burn_from` and `transfer_from`, and the custodial account the tokens come from.
-- `holder` is part of the request: a tx_id reused with another holder is refused.
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('mint', 'burn', 'transfer', 'burn_from', 'transfer_from'));

ALTER TABLE transactions
    ADD COLUMN holder BYTEA CHECK (octet_length(holder) = 20);
-- a holder exactly for the kinds that take tokens from one
ALTER TABLE transactions ADD CONSTRAINT transactions_holder_kind_check
    CHECK ((holder IS NOT NULL) = (kind IN ('burn_from', 'transfer_from')));
