CREATE SCHEMA IF NOT EXISTS cioloader;

CREATE TABLE cioloader.integrations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    schema_name text        NOT NULL,
    signing_key text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    CONSTRAINT integrations_schema_name_key UNIQUE (schema_name)
);

CREATE TABLE cioloader.webhook_urls (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint      NOT NULL REFERENCES cioloader.integrations (id),
    token_hash     bytea       NOT NULL,
    token_prefix   text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    CONSTRAINT webhook_urls_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX webhook_urls_integration_idx ON cioloader.webhook_urls (integration_id);

-- At most two active URLs per integration, enforced by the database so that
-- concurrent "generate" calls can never make a third: inserting takes a row lock
-- on the integration (see the store), and this trigger re-counts under that lock.
CREATE FUNCTION cioloader.webhook_urls_limit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM cioloader.integrations WHERE id = NEW.integration_id FOR UPDATE;
    IF (SELECT count(*) FROM cioloader.webhook_urls
        WHERE integration_id = NEW.integration_id AND revoked_at IS NULL) >= 2 THEN
        RAISE EXCEPTION 'integration % already has two active webhook URLs', NEW.integration_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'webhook_urls_active_limit';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER webhook_urls_limit
    BEFORE INSERT ON cioloader.webhook_urls
    FOR EACH ROW EXECUTE FUNCTION cioloader.webhook_urls_limit();
