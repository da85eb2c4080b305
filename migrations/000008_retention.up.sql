-- Retention (SPEC 4): how many days of events an integration keeps, by each
-- event's own time (its timestamp, else its arrival). NULL keeps everything.
-- The bound keeps the window's start a sane instant; the API says so first.
ALTER TABLE cioloader.integrations ADD COLUMN retention_days integer
    CONSTRAINT integrations_retention_days_range CHECK (retention_days BETWEEN 1 AND 36500);
