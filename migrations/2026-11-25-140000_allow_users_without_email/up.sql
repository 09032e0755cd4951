-- Kakao and Naver share the e-mail address only when the person consents, so an account may
-- have none. Addresses that are there stay unique regardless of case: the unique index on
-- lower(email) admits any number of NULLs.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- An address nobody gave cannot have been verified.
ALTER TABLE users
    ADD CONSTRAINT users_verified_email_needs_email CHECK (email IS NOT NULL OR NOT verified_email);
