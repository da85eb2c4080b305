-- Erasure requests (GDPR, CCPA): `cioloader forget` and POST /v1/integrations/{id}/erasures.

-- erasure_key is the normalised form of one identifier of a person, "kind:value":
-- emails compare case-insensitively (lower()), ids and cio_ids exactly. It is
-- the only place the normalisation is written: the index, the erasure and the
-- tombstone check all go through it, so they cannot disagree.
CREATE FUNCTION cioloader.erasure_key(kind text, value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind || ':' || CASE WHEN kind = 'email' THEN lower(value) ELSE value END;

-- erasure_keys is the matching rule: every identifier an event names its person
-- by. Current bodies: data.identifiers.{email,id,cio_id}, the deprecated
-- data.customer_id, data.email_address (customer events), data.recipient when it
-- is an email address. Legacy bodies (event_type): data.customer_id,
-- data.email_address, data.variables.customer.{id,email}. Values are compared
-- as their JSON text (#>>), so a number id 42 is "42". Per-integration GIN
-- indexes are built on this expression (one SQL body, inlined by the planner
-- so the index expression and the queries match).
CREATE FUNCTION cioloader.erasure_keys(raw jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(ARRAY[
    cioloader.erasure_key('email',  raw #>> '{data,identifiers,email}'),
    cioloader.erasure_key('email',  raw #>> '{data,email_address}'),
    cioloader.erasure_key('email',  CASE WHEN strpos(raw #>> '{data,recipient}', '@') > 0 THEN raw #>> '{data,recipient}' END),
    cioloader.erasure_key('email',  raw #>> '{data,variables,customer,email}'),
    cioloader.erasure_key('id',     raw #>> '{data,identifiers,id}'),
    cioloader.erasure_key('id',     raw #>> '{data,customer_id}'),
    cioloader.erasure_key('id',     raw #>> '{data,variables,customer,id}'),
    cioloader.erasure_key('cio_id', raw #>> '{data,identifiers,cio_id}')
], NULL);

-- erasure_hash is what is kept of an identifier: SHA-256 of its erasure_key.
CREATE FUNCTION cioloader.erasure_hash(key text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sha256(convert_to(key, 'UTF8'));

-- try_jsonb parses text as jsonb, NULL when it is not valid JSON (_sdc_rejected
-- records may be truncated). PostgreSQL 15 has no pg_input_is_valid.
CREATE FUNCTION cioloader.try_jsonb(t text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- One row per erasure request: who asked, the hashed identifiers (never the
-- plain values) and the rows removed per table. completed_at is NULL while the
-- deletion runs, and stays NULL if it failed (the tombstones are in place; run
-- the request again).
CREATE TABLE cioloader.erasures (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id    bigint      NOT NULL REFERENCES cioloader.integrations (id),
    requested_at      timestamptz NOT NULL DEFAULT now(),
    requested_by      text        NOT NULL CHECK (requested_by IN ('api', 'cli')),
    identifier_hashes text[]      NOT NULL,
    tombstones_until  timestamptz NOT NULL,
    completed_at      timestamptz,
    rows_deleted      jsonb
);

CREATE INDEX erasures_integration_idx ON cioloader.erasures (integration_id, id);

-- Tombstones: while one is live, ingest drops events naming that identifier
-- (Customer.io re-delivers for 7 days). Keyed by schema, which never changes.
CREATE TABLE cioloader.erasure_tombstones (
    schema_name text        NOT NULL,
    key_hash    bytea       NOT NULL,
    erasure_id  bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (schema_name, key_hash)
);

CREATE INDEX erasure_tombstones_expires_idx ON cioloader.erasure_tombstones (expires_at);
