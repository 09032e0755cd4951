-- Every account had an address before; none is made up for those that have none. They must be
-- given one (or deleted) before this can be reverted.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE email IS NULL) THEN
        RAISE EXCEPTION '% users have no e-mail address; give them one or delete them before reverting',
            (SELECT count(*) FROM users WHERE email IS NULL);
    END IF;
END
$$;

ALTER TABLE users DROP CONSTRAINT users_verified_email_needs_email;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
