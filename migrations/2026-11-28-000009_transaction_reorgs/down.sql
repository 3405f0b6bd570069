ALTER TABLE transactions DROP COLUMN reorgs;
