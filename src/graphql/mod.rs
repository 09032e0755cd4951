//! The GraphQL schema: per-domain query and mutation objects merged into one root, the limits
//! that keep hostile queries cheap, and the entry point that runs one request.

mod context;
mod errors;
mod limits;
mod loaders;
mod pagination;
mod posts;
mod session;
mod users;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

pub use context::RequestContext;
pub use errors::{ErrorCodes, PARSE_FAILED, VALIDATION_FAILED};
pub use limits::{MAX_ALIASES, MAX_DOCUMENT_BYTES, QueryLimits};
use loaders::{AuthorPostsLoader, UserLoader};

use crate::state::AppState;

/// The deepest selection accepted. GraphiQL's introspection query needs about 13 levels.
const MAX_DEPTH_WITH_INTROSPECTION: usize = 15;
/// The deepest selection accepted where introspection is off.
const MAX_DEPTH: usize = 10;
/// The most fields one query may select, counting every field once.
const MAX_COMPLEXITY: usize = 500;
/// The most directives on one field.
const MAX_DIRECTIVES_PER_FIELD: usize = 5;

/// Every query.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(users::UserQuery, posts::PostQuery);

/// Every mutation.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    posts::PostMutation,
    users::UserMutation,
    session::SessionMutation,
);

/// The FestAPI schema type.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
}

/// The schema served to clients, with its limits; introspection is off in production.
pub fn build_schema(state: AppState) -> AppSchema {
    let production = state.env.is_production();
    let mut builder = builder()
        .data(state)
        .extension(ErrorCodes)
        .extension(QueryLimits)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES_PER_FIELD);
    builder = if production {
        builder
            .limit_depth(MAX_DEPTH)
            .disable_introspection()
            .disable_suggestions()
    } else {
        builder.limit_depth(MAX_DEPTH_WITH_INTROSPECTION)
    };
    builder.finish()
}

/// The schema in GraphQL SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Runs one GraphQL request on behalf of `context`.
///
/// Each request gets its own [`DataLoader`], so batching and caching never cross requests.
pub async fn execute(
    schema: &AppSchema,
    state: &AppState,
    request: async_graphql::Request,
    context: RequestContext,
) -> async_graphql::Response {
    let users = DataLoader::new(UserLoader::new(state.database.clone()), tokio::spawn);
    let author_posts =
        DataLoader::new(AuthorPostsLoader::new(state.database.clone()), tokio::spawn);
    schema
        .execute(request.data(context).data(users).data(author_posts))
        .await
}
