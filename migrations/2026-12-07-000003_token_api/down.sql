DROP TABLE token_movements;
DROP TABLE withdrawals;
DROP TABLE redemption_requests;
