-- Plans (see migrations/postgres): each app's plan in force and a change waiting for a later billing period.
CREATE TABLE app_plans (
    app_id             BLOB    PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    storage_bytes      INTEGER NOT NULL,
    burst              INTEGER NOT NULL,
    next_storage_bytes INTEGER,
    next_burst         INTEGER,
    next_from_period   INTEGER
) STRICT, WITHOUT ROWID;
