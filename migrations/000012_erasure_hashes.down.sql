-- CASCADE: no index is built on it, but a schema's fill may have used it.
DROP FUNCTION IF EXISTS cioloader.erasure_key_hashes(text[]) CASCADE;
