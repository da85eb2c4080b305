DROP FUNCTION IF EXISTS cioloader.drop_imported(text, text, text[]);
DROP TABLE IF EXISTS cioloader.import_progress;
DROP TABLE IF EXISTS cioloader.imports;
