DROP TABLE wallet_keys;
DROP TABLE wallets;
DROP FUNCTION wallet_keys_guard();
DROP FUNCTION wallets_guard();
