DROP TABLE inbound_webhooks;
