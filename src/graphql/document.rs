//! Each request's document, parsed once and kept for the next request that sends it.
//!
//! [`prepare`] runs before anything else: it resolves an automatic persisted query
//! ([`persisted`](crate::graphql::persisted)), looks the document up by the SHA-256 of its text
//! and, the first time a text is seen, checks the limits that are properties of the text and
//! parses it. The HTTP layer learns the operation from that parse, and the [`DocumentChecks`]
//! extension hands the same parse to async-graphql instead of letting it parse again.
//!
//! What is kept is only what the text alone decides: a document over a limit, or one that does
//! not parse, is never kept, and is refused anew each time. What depends on the request is
//! checked on every request, cached document or not: the nesting of the variables, the choice
//! of operation, the non-null variables, and async-graphql's validation of a document that
//! declares variables (it checks their values, and their values can change a list's cost).
//! Validation of a document that declares none depends on the text alone, so its result is kept
//! with the document once it passed.
//!
//! The cache is bounded by the bytes of document text it holds (`GRAPHQL_DOCUMENT_CACHE_BYTES`)
//! and shared by every request of the instance; the schema never changes while it runs, so
//! nothing invalidates an entry.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};
use metrics::Counter;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::config::GraphqlLimits;
use crate::error::INTERNAL_MESSAGE;
use crate::graphql::errors::{coded_error, with_code};
use crate::graphql::persisted::{self, PersistedQueryError};
use crate::graphql::{OperationInfo, PARSE_FAILED, VALIDATION_FAILED, limits, operation};

/// The SHA-256 of a document's text: the cache's key, and an automatic persisted query's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DocumentHash([u8; 32]);

impl DocumentHash {
    /// The hash of `text`.
    pub(crate) fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// The hash written as 64 hexadecimal digits, in either case.
    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        // Digit by digit: `from_str_radix` would take a sign too.
        let digit = |byte: u8| {
            char::from(byte)
                .to_digit(16)
                .and_then(|value| u8::try_from(value).ok())
        };
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Self(bytes))
    }
}

/// A document that passed the limits on its text and parsed.
pub(crate) struct Document {
    /// The text, which an automatic persisted query sent by hash alone runs.
    text: String,
    parsed: ExecutableDocument,
    /// Whether any operation declares a variable: then validation depends on the request.
    declares_variables: bool,
    /// async-graphql's validation result, once it passed, for a document that declares no
    /// variables.
    validation: OnceLock<ValidationResult>,
}

impl Document {
    /// Checks `text` against the limits on a document's text and parses it; the error is the
    /// one the request is refused with.
    fn check_and_parse(text: &str, limits: &GraphqlLimits) -> Result<Self, DocumentError> {
        limits::check_text(text, limits)
            .map_err(|message| DocumentError::Text(Box::new(limit_error(message))))?;
        // Parsed here rather than by async-graphql, whose own checks after parsing (recursion
        // depth, directives per field) follow every fragment spread anew, in time exponential in
        // the length of a chain of fragments; `check_fragments` does their work in linear time.
        let parsed = async_graphql::parser::parse_query(text).map_err(|error| {
            DocumentError::Parse(Box::new(with_code(ServerError::from(error), PARSE_FAILED)))
        })?;
        limits::check_document(&parsed, limits).map_err(|message| DocumentError::Limit {
            error: Box::new(limit_error(message)),
            operations: Box::new(parsed.operations.clone()),
        })?;
        let declares_variables = parsed
            .operations
            .iter()
            .any(|(_, operation)| !operation.node.variable_definitions.is_empty());
        Ok(Self {
            text: text.to_owned(),
            parsed,
            declares_variables,
            validation: OnceLock::new(),
        })
    }

    /// The document's text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// Why a document cannot run, whoever sends it.
#[derive(Clone)]
enum DocumentError {
    /// The text is over a limit; it was not parsed.
    Text(Box<ServerError>),
    /// The text does not parse.
    Parse(Box<ServerError>),
    /// The parsed document is over a limit. Its operations still tell what the request asked
    /// for (GET refuses mutations whether they are over a limit or not).
    Limit {
        error: Box<ServerError>,
        operations: Box<DocumentOperations>,
    },
}

fn limit_error(message: String) -> ServerError {
    coded_error(message, None, VALIDATION_FAILED)
}

impl DocumentError {
    /// The error the request is refused with.
    fn error(&self) -> ServerError {
        match self {
            Self::Text(error) | Self::Parse(error) | Self::Limit { error, .. } => (**error).clone(),
        }
    }
}

/// Weighs a cached document by the length of its text.
#[derive(Debug, Clone, Copy)]
struct TextLength;

impl Weighter<DocumentHash, Arc<Document>> for TextLength {
    fn weight(&self, _hash: &DocumentHash, document: &Arc<Document>) -> u64 {
        // Never zero: an entry of weight zero would never be evicted.
        u64::try_from(document.text.len())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The documents one instance has seen, parsed, up to a number of bytes of text.
pub struct DocumentCache {
    cache: Cache<DocumentHash, Arc<Document>, TextLength>,
    limits: GraphqlLimits,
    hits: Counter,
    misses: Counter,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DocumentCache")
            .field("documents", &self.cache.len())
            .field("bytes", &self.cache.weight())
            .finish_non_exhaustive()
    }
}

/// A guess at the size of an operation, to size the cache's table.
const TYPICAL_DOCUMENT_BYTES: u64 = 500;

impl DocumentCache {
    /// A cache holding up to `limits.document_cache_bytes` of document text, checking documents
    /// against `limits`, and counting its hits and misses in `hits` and `misses`.
    pub fn new(limits: GraphqlLimits, hits: Counter, misses: Counter) -> Self {
        let bytes = u64::try_from(limits.document_cache_bytes).unwrap_or(u64::MAX);
        let items = usize::try_from(bytes / TYPICAL_DOCUMENT_BYTES)
            .unwrap_or(usize::MAX)
            .max(1);
        Self {
            cache: Cache::with_weighter(items, bytes, TextLength),
            limits,
            hits,
            misses,
        }
    }

    /// The document with this hash, when it is kept.
    pub(crate) fn get(&self, hash: &DocumentHash) -> Option<Arc<Document>> {
        self.cache.get(hash)
    }

    /// The document `text` (whose hash is `hash`), from the cache or checked and parsed; kept
    /// when it passed.
    fn document(&self, text: &str, hash: DocumentHash) -> Result<Arc<Document>, DocumentError> {
        // The text is compared too: a cached document runs only for exactly its own text.
        if let Some(document) = self
            .cache
            .get(&hash)
            .filter(|document| document.text == text)
        {
            self.hits.increment(1);
            return Ok(document);
        }
        self.misses.increment(1);
        let document = Arc::new(Document::check_and_parse(text, &self.limits)?);
        self.cache.insert(hash, Arc::clone(&document));
        Ok(document)
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// The bytes of text the kept documents hold.
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }
}

/// A request whose document has been looked up or parsed, ready to run.
pub struct PreparedRequest {
    request: async_graphql::Request,
    operation: OperationInfo,
    document: Arc<PreparedDocument>,
}

impl PreparedRequest {
    /// The operation the request runs, as far as its document tells.
    pub fn operation(&self) -> &OperationInfo {
        &self.operation
    }
}

/// A request's document, handed to its extensions through the request's data.
pub(crate) struct PreparedDocument {
    outcome: Result<Arc<Document>, DocumentError>,
    /// The request's `operationName`, which the parsing hook is not given.
    operation_name: Option<String>,
}

impl PreparedDocument {
    /// The document, when it passed the limits and parsed.
    pub(crate) fn document(&self) -> Option<&ExecutableDocument> {
        self.outcome.as_ref().ok().map(|document| &document.parsed)
    }

    /// The request's `operationName`.
    pub(crate) fn operation_name(&self) -> Option<&str> {
        self.operation_name.as_deref()
    }
}

/// Why a request cannot be prepared: it carries no document, or its automatic persisted query
/// cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Neither `query` nor a persisted query.
    MissingQuery,
    /// An automatic persisted query that cannot be used.
    PersistedQuery(PersistedQueryError),
}

/// Prepares `request`: resolves its persisted query, if any, and looks up or parses its
/// document, checking the limits on the text the first time it is seen.
pub fn prepare(
    documents: &DocumentCache,
    mut request: async_graphql::Request,
) -> Result<PreparedRequest, RequestError> {
    let hash = persisted::resolve(documents, &mut request).map_err(RequestError::PersistedQuery)?;
    if request.query.trim().is_empty() {
        return Err(RequestError::MissingQuery);
    }
    let hash = hash.unwrap_or_else(|| DocumentHash::of(&request.query));
    let outcome = documents.document(&request.query, hash);
    let operation = match &outcome {
        Ok(document) => operation_info(&document.parsed.operations, &request),
        Err(DocumentError::Limit { operations, .. }) => operation_info(operations, &request),
        Err(DocumentError::Text(_) | DocumentError::Parse(_)) => OperationInfo::unknown(),
    };
    let document = Arc::new(PreparedDocument {
        outcome,
        operation_name: request.operation_name.clone(),
    });
    Ok(PreparedRequest {
        request,
        operation,
        document,
    })
}

fn operation_info(
    operations: &DocumentOperations,
    request: &async_graphql::Request,
) -> OperationInfo {
    match operation::selected_operation(operations, request.operation_name.as_deref()) {
        Ok((name, operation)) => OperationInfo {
            name: name.map(str::to_owned),
            operation_type: Some(operation.ty),
        },
        Err(_) => OperationInfo::unknown(),
    }
}

impl PreparedRequest {
    /// The request to execute, carrying its document for [`DocumentChecks`], and the document,
    /// which the response is mended by afterwards.
    pub(crate) fn into_request(self) -> (async_graphql::Request, Arc<PreparedDocument>) {
        let document = Arc::clone(&self.document);
        (self.request.data(self.document), document)
    }
}

/// The schema extension that runs each request on its prepared document, checks what depends
/// on the request, and enforces the cost limit on validation's result.
///
/// In the order the work would be done, its errors are: the limits on the text, the nesting of
/// the variables, the parse, the limits on the parsed document, the choice of operation, the
/// non-null variables; then validation, and the cost.
pub struct DocumentChecks {
    limits: GraphqlLimits,
}

impl DocumentChecks {
    /// The extension enforcing `limits`.
    pub fn new(limits: GraphqlLimits) -> Self {
        Self { limits }
    }
}

impl ExtensionFactory for DocumentChecks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Self {
            limits: self.limits,
        })
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentChecks {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        _query: &str,
        variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let Some(prepared) = ctx.data_opt::<Arc<PreparedDocument>>() else {
            // Every request runs through `graphql::execute`, which prepares it.
            tracing::error!("a GraphQL request ran without a prepared document");
            return Err(coded_error(INTERNAL_MESSAGE, None, "INTERNAL_SERVER_ERROR"));
        };
        self.checked(
            &prepared.outcome,
            prepared.operation_name.as_deref(),
            variables,
        )
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let document = ctx
            .data_opt::<Arc<PreparedDocument>>()
            .and_then(|prepared| prepared.outcome.as_ref().ok())
            .filter(|document| !document.declares_variables);
        if let Some(result) = document.and_then(|document| document.validation.get()) {
            return Ok(*result);
        }
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| with_code(error, VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        limits::check_cost(&result, &self.limits).map_err(|message| vec![limit_error(message)])?;
        if let Some(document) = document {
            // Another request with the same document may have set it first, to the same value.
            let _ = document.validation.set(result);
        }
        Ok(result)
    }
}

impl DocumentChecks {
    /// The document to execute, after the checks that depend on the request.
    fn checked(
        &self,
        outcome: &Result<Arc<Document>, DocumentError>,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> ServerResult<ExecutableDocument> {
        if let Err(error @ DocumentError::Text(_)) = outcome {
            return Err(error.error());
        }
        limits::check_variables(variables, self.limits.max_nesting).map_err(limit_error)?;
        let document = outcome.as_ref().map_err(DocumentError::error)?;
        let (_, operation) =
            operation::selected_operation(&document.parsed.operations, operation_name)
                .map_err(|message| coded_error(message, None, VALIDATION_FAILED))?;
        operation::check_variables(operation, variables)?;
        // async-graphql takes the document by value and prunes it for the request's variables.
        Ok(document.parsed.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(bytes: usize) -> DocumentCache {
        let limits = GraphqlLimits {
            document_cache_bytes: bytes,
            ..GraphqlLimits::default()
        };
        DocumentCache::new(limits, Counter::noop(), Counter::noop())
    }

    fn query(number: usize) -> String {
        format!("query Q{number} {{ __typename }}")
    }

    #[test]
    fn the_cache_holds_at_most_its_bytes_of_text() {
        let documents = cache(2_000);
        for number in 0..1_000 {
            let text = query(number);
            assert!(documents.document(&text, DocumentHash::of(&text)).is_ok());
            assert!(documents.bytes() <= 2_000, "{documents:?}");
        }
        let per_document = query(999).len();
        assert!(
            documents.len() <= 2_000 / (per_document - 1),
            "{documents:?}"
        );
        assert!(documents.len() > 10, "{documents:?}");
    }

    #[test]
    fn documents_are_parsed_once_and_kept_only_when_they_pass() {
        let documents = cache(100_000);
        let text = query(1);
        let first = documents
            .document(&text, DocumentHash::of(&text))
            .ok()
            .unwrap();
        let second = documents
            .document(&text, DocumentHash::of(&text))
            .ok()
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));

        let over = format!("{{{}}}", " a".repeat(2_000));
        assert!(documents.document(&over, DocumentHash::of(&over)).is_err());
        let broken = "{ posts(";
        assert!(
            documents
                .document(broken, DocumentHash::of(broken))
                .is_err()
        );
        let aliased = format!(
            "{{ {} }}",
            (0..16)
                .map(|n| format!("a{n}: __typename b{n}: me {{ id }}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(
            documents
                .document(&aliased, DocumentHash::of(&aliased))
                .is_err()
        );
        assert_eq!(documents.len(), 1);
    }

    #[test]
    fn a_hash_only_serves_its_own_text() {
        let documents = cache(100_000);
        let text = query(1);
        let hash = DocumentHash::of(&text);
        assert!(documents.document(&text, hash).is_ok());
        // The same hash with another text (which SHA-256 makes impossible) is not served.
        let other = query(2);
        let document = documents.document(&other, hash).ok().unwrap();
        assert_eq!(document.text(), other);
    }

    #[test]
    fn hashes_read_hexadecimal_in_either_case() {
        let hash = DocumentHash::of("{ __typename }");
        let hex: String = hash.0.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(DocumentHash::from_hex(&hex), Some(hash));
        assert_eq!(DocumentHash::from_hex(&hex.to_uppercase()), Some(hash));
        assert_eq!(DocumentHash::from_hex(&hex[1..]), None);
        assert_eq!(DocumentHash::from_hex(&format!("{}g", &hex[1..])), None);
        assert_eq!(DocumentHash::from_hex(&format!("+{}", &hex[1..])), None);
    }

    #[test]
    fn concurrent_requests_share_one_cache() {
        let documents = Arc::new(cache(100_000));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let documents = Arc::clone(&documents);
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let text = query((thread + round) % 20);
                        let document = documents.document(&text, DocumentHash::of(&text));
                        assert_eq!(document.ok().unwrap().text(), text);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(documents.len(), 20);
    }
}
