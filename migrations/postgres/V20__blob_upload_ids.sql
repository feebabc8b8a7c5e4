-- Each blob record names the upload whose object holds its bytes: objects live under <app>/<user>/<hash>.<upload_id>,
-- so a sweeper removing an abandoned upload's object can never remove the object of a later upload of the same hash.
-- Records from before have none, and keep their objects under <app>/<user>/<hash>.
ALTER TABLE blobs ADD COLUMN upload_id uuid;
