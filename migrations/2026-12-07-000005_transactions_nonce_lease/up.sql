-- The nonce lease a signed transaction was signed under. A worker that dies after recording
-- the signed transaction but before committing its nonce leaves the lease to expire; the
-- next worker commits it again before broadcasting, and when the nonce went to another
-- lease meanwhile, signs the transaction anew with a fresh nonce instead of broadcasting
-- bytes whose nonce another transaction now uses.
ALTER TABLE transactions ADD COLUMN nonce_lease UUID;
