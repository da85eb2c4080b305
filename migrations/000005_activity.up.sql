-- Events received per integration, hour (UTC), object_type and metric, with
-- the time of the last one. Replicas count committed deliveries in memory and
-- add their counts here about once a second, so the activity chart and the
-- list's "events in 24 h" read a few hundred rows instead of the event tables.
-- Rows older than 35 days are pruned, except each integration's newest hour
-- (its last-received time).
CREATE TABLE cioloader.activity (
    integration_id bigint NOT NULL REFERENCES cioloader.integrations (id) ON DELETE CASCADE,
    hour           timestamptz NOT NULL,
    object_type    text NOT NULL,
    metric         text NOT NULL,
    events         bigint NOT NULL,
    last_at        timestamptz NOT NULL,
    PRIMARY KEY (integration_id, hour, object_type, metric)
);
