-- App registration: the account that manages each app (NULL: the operator made it), its OAuth client id (public,
-- random, unique) and the redirect URIs OAuth may send a user back to. Apps made before get a random client id:
-- 122 random bits of a version 4 UUID, as hex.
ALTER TABLE apps ADD COLUMN owner_id uuid;
ALTER TABLE apps ADD COLUMN client_id text NOT NULL DEFAULT ('cid_' || replace(gen_random_uuid()::text, '-', ''));
ALTER TABLE apps ALTER COLUMN client_id DROP DEFAULT;
ALTER TABLE apps ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX apps_client_id ON apps (client_id);
-- An owner lists their apps.
CREATE INDEX apps_by_owner ON apps (owner_id, created_at);
