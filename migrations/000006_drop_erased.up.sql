-- Runs an ingest transaction's tombstone statement (built by the writer; see
-- internal/postgres/erasure_write.go) only when the schema has a live
-- tombstone. Without one, the check is one index probe; the statement itself
-- (a dozen CTEs that delete from every table of the schema) would cost its
-- executor start-up on every group commit, measured at a third of Postgres's
-- CPU per transaction. The statement runs in the caller's transaction and
-- snapshot rules, with the arguments in the order it numbers them. The writer
-- turns sequential scans and hash and merge joins off for its transactions
-- (see writerPlanSettings); the statement is planned afresh on each call, and
-- some of its parts (the _sdc_rejected clean-up, the tombstone join) need
-- them: the function's SET clause gives them back for the call only.
CREATE FUNCTION cioloader.drop_erased(schema_name text, stmt text, ids text[], at timestamptz,
                                      prob_ids text[], prob_recs text[], rej_recs text[])
RETURNS bigint LANGUAGE plpgsql
SET enable_seqscan = on SET enable_hashjoin = on SET enable_mergejoin = on
AS $$
DECLARE
    dropped bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cioloader.erasure_tombstones AS t
                   WHERE t.schema_name = drop_erased.schema_name AND t.expires_at > now()) THEN
        RETURN 0;
    END IF;
    EXECUTE stmt INTO dropped USING ids, schema_name, at, prob_ids, prob_recs, rej_recs;
    RETURN dropped;
END
$$;
