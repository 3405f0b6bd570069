DROP TABLE transaction_monitoring;
