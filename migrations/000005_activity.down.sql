DROP TABLE IF EXISTS cioloader.activity;
