DROP TABLE IF EXISTS cioloader.warehouse_columns;
DROP TABLE IF EXISTS cioloader.warehouse_events;
