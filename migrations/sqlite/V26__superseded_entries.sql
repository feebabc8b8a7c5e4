-- Compaction (see migrations/postgres).
ALTER TABLE changes ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
