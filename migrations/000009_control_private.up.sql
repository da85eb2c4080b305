-- The control schema holds every integration's signing key: no role but
-- cioloader's own may reach it (SPEC 10.14). A schema gives PUBLIC nothing
-- by default, but a database's default privileges (ALTER DEFAULT PRIVILEGES
-- ... ON SCHEMAS) or a hand-made grant could have; take it back. The
-- functions keep PUBLIC's EXECUTE: without USAGE on the schema no one else
-- can name them, and the loader's triggers and statements call them.
REVOKE ALL ON SCHEMA cioloader FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA cioloader FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA cioloader FROM PUBLIC;
