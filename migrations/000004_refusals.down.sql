DROP TABLE IF EXISTS cioloader.refusals;
