DROP TABLE IF EXISTS cioloader.erasure_tombstones;
DROP TABLE IF EXISTS cioloader.erasures;
DROP FUNCTION IF EXISTS cioloader.try_jsonb(text);
DROP FUNCTION IF EXISTS cioloader.erasure_hash(text);
-- CASCADE: every integration's data_erasure_idx is built on erasure_keys.
DROP FUNCTION IF EXISTS cioloader.erasure_keys(jsonb) CASCADE;
DROP FUNCTION IF EXISTS cioloader.erasure_key(text, text);
