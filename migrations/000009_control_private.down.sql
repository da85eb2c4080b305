-- Nothing to give back: PUBLIC never needed the control schema.
SELECT 1;
