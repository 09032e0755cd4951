//! The GraphQL schema: per-domain query and mutation objects merged into one root, the limits
//! that keep hostile queries cheap, and the entry point that runs one request.

mod context;
mod errors;
mod limits;
mod loaders;
mod nullability;
mod operation;
mod pagination;
mod posts;
mod sessions;
mod sign_in;
mod users;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::OperationType;
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

pub use context::RequestContext;
pub use errors::{ErrorCodes, PARSE_FAILED, VALIDATION_FAILED, was_refused};
pub use limits::{MAX_ALIASES, MAX_DOCUMENT_BYTES, QueryLimits};
use loaders::{AuthorPostsLoader, UserLoader};
pub use nullability::{NullPropagation, OutputTypes};
pub use operation::OperationCheck;
use operation::selected_operation;

use crate::config::GraphqlLimits;
use crate::state::AppState;

/// The deepest selection accepted. GraphiQL's introspection query needs about 13 levels.
const MAX_DEPTH_WITH_INTROSPECTION: usize = 15;
/// The deepest selection accepted where introspection is off.
const MAX_DEPTH: usize = 10;

/// Every query.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    users::UserQuery,
    posts::PostQuery,
    sessions::SessionQuery,
    sign_in::SignInQuery,
);

/// Every mutation.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    posts::PostMutation,
    users::UserMutation,
    sessions::SessionMutation,
    sign_in::SignInMutation,
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
    let types = OutputTypes::from_sdl(&sdl()).unwrap_or_else(|error| {
        tracing::error!(
            error = format!("{error:#}"),
            "cannot read the schema's own types: null propagation is off"
        );
        OutputTypes::default()
    });
    let mut builder = builder()
        .extension(ErrorCodes)
        // Outside the limits, so that it sees only documents they let through.
        .extension(OperationCheck)
        .extension(QueryLimits::new(state.graphql_limits))
        .extension(NullPropagation::new(Arc::new(types)))
        .data(state);
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

/// Whether `request` asks for a mutation (or a subscription): GET must not run one, and
/// mutations have rate limits of their own.
///
/// A document over the limits, that does not parse, or whose operation cannot be chosen counts as
/// a query: executing it reports the problem. The lexical limits are checked first, so nothing
/// deep reaches the parser.
pub fn is_mutation(request: &async_graphql::Request, limits: &GraphqlLimits) -> bool {
    if limits::check_text(&request.query, limits).is_err() {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    selected_operation(&document, request.operation_name.as_deref())
        .is_ok_and(|operation| operation.ty != OperationType::Query)
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
