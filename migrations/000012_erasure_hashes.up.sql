-- event_facts.erasure_hashes: the hashes of an event's erasure keys, which a GIN
-- index on event_facts finds a person's events by (issue 26). The index it
-- replaces, data_erasure_idx on cioloader.erasure_keys(_sdc_raw::jsonb), parsed
-- every event's _sdc_raw as jsonb at insert: a third of Postgres's CPU for
-- arrays once _sdc_raw became json. The writer computes the hashes from the
-- identifier values internal/facts reads in Go (the same paths, as #>> text),
-- through cioloader.erasure_key, so the normalisation is still written once.
-- A hash only finds candidates: an erasure deletes the rows whose
-- erasure_keys(_sdc_raw::jsonb) match exactly.
--
-- erasure_key_hashes is the set of hashes of keys (NULLs left out), as the
-- probe and the SQL fill compute it. hashtext is Postgres's text hash (the one
-- hash indexes use), 4 bytes a key. Should a major version ever change it,
-- `cioloader replay` writes every event's hashes again.
CREATE FUNCTION cioloader.erasure_key_hashes(keys text[]) RETURNS int4[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT DISTINCT hashtext(k) FROM unnest(keys) AS k WHERE k IS NOT NULL ORDER BY 1);
