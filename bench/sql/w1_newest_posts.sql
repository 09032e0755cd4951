-- W1: { posts(first: 20) { edges { node { id title author { name } } } } }, anonymous.
-- The page (one row more than asked, to learn whether another page follows), then the
-- DataLoader's one statement for the authors of those posts (:authors_page_1, found by bench/run).
SELECT "posts"."id", "posts"."title", "posts"."content", "posts"."author_id", "posts"."created_at", "posts"."updated_at" FROM "posts" ORDER BY "posts"."created_at" DESC, "posts"."id" DESC LIMIT 21;
SELECT "users"."id", "users"."email", "users"."name", "users"."picture", "users"."verified_email", "users"."provider", "users"."provider_id", "users"."created_at", "users"."updated_at", "users"."name_set_by_user", "users"."picture_set_by_user" FROM "users" WHERE ("users"."id" = ANY(:authors_page_1));
