-- Logout now ends the session an access token belongs to, which refuses every token of it:
-- revocations of single tokens are no longer kept.
DROP TABLE token_blacklist;
