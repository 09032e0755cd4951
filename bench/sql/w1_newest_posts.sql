-- W1: { posts(first: 20) { edges { node { id title author { name } } } } }, anonymous.
-- One statement: the page (one row more than asked, to learn whether another page follows)
-- with each post's author joined; the content is not selected, so not read.
SELECT "posts"."id", "posts"."title", NULL, "posts"."author_id", "posts"."created_at", "posts"."updated_at", "users"."id", "users"."email", "users"."name", "users"."picture", "users"."verified_email", "users"."provider", "users"."provider_id", "users"."created_at", "users"."updated_at", "users"."name_set_by_user", "users"."picture_set_by_user" FROM ("posts" INNER JOIN "users" ON ("posts"."author_id" = "users"."id")) ORDER BY "posts"."created_at" DESC, "posts"."id" DESC LIMIT 21;
