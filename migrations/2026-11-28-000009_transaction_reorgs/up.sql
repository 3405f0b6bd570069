-- How many confirmations of a transaction a reorg undid: the monitoring cycle counts a
-- confirmed mint or burn in its business metrics only while this is 0, so a confirmation
-- made anew after a reorg is not counted twice.
ALTER TABLE transactions
    ADD COLUMN reorgs INTEGER NOT NULL DEFAULT 0 CHECK (reorgs >= 0);
