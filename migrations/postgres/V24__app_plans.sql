-- Plans: each app's plan in force (storage in bytes and the transfer burst), and a change that lowers a limit,
-- waiting for a later billing period (months since year 0: year * 12 + month - 1). Deleted with the app.
CREATE TABLE app_plans (
    app_id             uuid    PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    storage_bytes      bigint  NOT NULL,
    burst              integer NOT NULL,
    next_storage_bytes bigint,
    next_burst         integer,
    next_from_period   bigint
);
