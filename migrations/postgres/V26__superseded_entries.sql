-- Compaction: an entry a device marked superseded keeps its place and change id, and loses its payload.
ALTER TABLE changes ADD COLUMN superseded boolean NOT NULL DEFAULT false;
