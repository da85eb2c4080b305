DROP TABLE IF EXISTS cioloader.column_sources;
