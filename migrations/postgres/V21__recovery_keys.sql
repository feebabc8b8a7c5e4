-- The recovery key: the hash of its recovery login key per account (NULL: none set), and beside each app's key
-- envelope the same master key sealed under the recovery key (NULL: the app's key came after the recovery key).
ALTER TABLE users ADD COLUMN recovery_key_hash bytea;
ALTER TABLE key_envelopes ADD COLUMN recovery_envelope bytea;
