ALTER TABLE cioloader.integrations DROP COLUMN IF EXISTS retention_days;
