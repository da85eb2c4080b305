-- History imports (SPEC 11): `cioloader import customerio` (Customer.io's App API)
-- and `cioloader import file` (files of reporting-webhook bodies).

-- One row per import: what it reads, its state and counts. An import
-- interrupted (Ctrl-C, kill -9, network loss) keeps its row and its progress;
-- the same command started again continues it. schema_name is the
-- integration's (it never changes), for the writer's probe in drop_imported.
CREATE TABLE cioloader.imports (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id     bigint      NOT NULL REFERENCES cioloader.integrations (id),
    schema_name        text        NOT NULL,
    source             text        NOT NULL CHECK (source IN ('customerio', 'file')),
    region             text,
    range_start        timestamptz,         -- customerio: creation times read; NULL while the start is still being found
    range_end          timestamptz,
    explicit_range     boolean     NOT NULL DEFAULT false,
    state              text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'interrupted', 'failed', 'done')),
    requests           bigint      NOT NULL DEFAULT 0,
    deliveries         bigint      NOT NULL DEFAULT 0,
    events_written     bigint      NOT NULL DEFAULT 0,
    events_existing    bigint      NOT NULL DEFAULT 0, -- occurrences already stored (webhook or an earlier import)
    events_replaced    bigint      NOT NULL DEFAULT 0, -- imported copies dropped for a webhook copy that arrived meanwhile
    skipped            jsonb       NOT NULL DEFAULT '{}', -- deliveries (or objects) not imported, by reason
    last_error         text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);

CREATE INDEX imports_integration_idx ON cioloader.imports (integration_id, id);
CREATE INDEX imports_schema_idx ON cioloader.imports (schema_name) WHERE source = 'customerio';

-- Progress per unit of an import: a window of creation times ("<start>/<end>",
-- RFC 3339) and the cursor of its next page, or a file (its path) and the byte
-- offset of its next object. A unit's events are committed before its
-- position moves past them, so a restart re-reads at most one page, whose
-- events are then found already stored.
CREATE TABLE cioloader.import_progress (
    import_id  bigint  NOT NULL REFERENCES cioloader.imports (id) ON DELETE CASCADE,
    unit       text    NOT NULL,
    position   text    NOT NULL DEFAULT '',
    done       boolean NOT NULL DEFAULT false,
    deliveries bigint  NOT NULL DEFAULT 0,
    events     bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (import_id, unit)
);

-- Runs an ingest transaction's statement that deletes the imported copies of
-- the batch's webhook events (built by the writer; see
-- internal/postgres/imports_write.go) only when the schema has ever had a
-- Customer.io import: without one, the check is one index probe.
CREATE FUNCTION cioloader.drop_imported(schema_name text, stmt text, twins text[])
RETURNS bigint LANGUAGE plpgsql
AS $$
DECLARE
    dropped bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cioloader.imports AS i
                   WHERE i.schema_name = drop_imported.schema_name AND i.source = 'customerio') THEN
        RETURN 0;
    END IF;
    EXECUTE stmt INTO dropped USING twins;
    RETURN dropped;
END
$$;
