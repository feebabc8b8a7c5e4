-- Each blob record names the upload whose object holds its bytes (see migrations/postgres).
ALTER TABLE blobs ADD COLUMN upload_id BLOB;
