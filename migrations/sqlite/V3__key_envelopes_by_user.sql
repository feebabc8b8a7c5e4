-- A password change re-wraps every envelope of the account: they are found by user.
CREATE INDEX key_envelopes_by_user ON key_envelopes (user_id);
