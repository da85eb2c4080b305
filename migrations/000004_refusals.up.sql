-- Deliveries refused as a whole after their token resolved (bad signature, not
-- JSON, too large, too many events, database unavailable), counted per
-- integration and reason. Replicas count in memory and add their counts here
-- about once a second, so the numbers are shared and survive restarts.
CREATE TABLE cioloader.refusals (
    integration_id bigint NOT NULL REFERENCES cioloader.integrations (id) ON DELETE CASCADE,
    reason         text NOT NULL,
    count          bigint NOT NULL,
    last_at        timestamptz NOT NULL,
    PRIMARY KEY (integration_id, reason)
);
