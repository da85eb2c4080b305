DROP FUNCTION IF EXISTS cioloader.drop_erased(text, text, text[], timestamptz, text[], text[], text[]);
