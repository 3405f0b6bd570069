DROP TABLE webhook_deliveries;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoint_secrets;
DROP TABLE webhook_endpoints;
DROP TABLE webhook_replay;
DROP TABLE idempotency_keys;
