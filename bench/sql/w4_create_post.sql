-- W4: mutation { createPost(input: {…}) { id } }, signed in: the session check, then the insert.
-- The server mints a time-ordered UUID for the id; here a random number stands in for it.
\set r random(1, 9000000000000000000)
WITH noted AS (UPDATE sessions SET last_used_at = now() WHERE id = :session_id AND user_id = :user_id AND ended_at IS NULL AND expires_at > now() AND last_used_at < now() - interval '1 minute') SELECT users.* FROM users JOIN sessions ON sessions.user_id = users.id WHERE sessions.id = :session_id AND users.id = :user_id AND sessions.ended_at IS NULL AND sessions.expires_at > now();
INSERT INTO "posts" ("id", "title", "content", "author_id") VALUES ('post_pgbench_' || (:r)::text, 'Benchmark post', 'Written under load by the benchmark.', :user_id) RETURNING "posts"."id", "posts"."title", "posts"."content", "posts"."author_id", "posts"."created_at", "posts"."updated_at";
