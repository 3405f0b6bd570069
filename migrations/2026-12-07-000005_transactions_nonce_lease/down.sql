ALTER TABLE transactions DROP COLUMN nonce_lease;
