-- RudderStack's warehouse layout (internal/postgres/warehouse.go): which event
-- names have their relation, and which columns each relation of an integration's
-- schema has, with the type the first value gave it (RudderStack's column keeps
-- its first type). The views tracks and <event table> are generated from these rows.
CREATE TABLE cioloader.warehouse_events (
    schema_name text NOT NULL,
    event_name  text NOT NULL,
    table_name  text NOT NULL,
    PRIMARY KEY (schema_name, event_name)
);

-- One row per (relation, column, source path): a column is read from each path
-- that names it; its type and its place among the view's columns are those of its
-- first row (lowest id), so a view only ever gains columns at its end.
CREATE TABLE cioloader.warehouse_columns (
    id          bigserial NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    column_name text NOT NULL,
    source      text NOT NULL,
    path        text[] NOT NULL,
    type        text NOT NULL,
    PRIMARY KEY (schema_name, table_name, column_name, source, path)
);
