//! Chooses the operation a request runs and checks its variables, before anything runs.
//!
//! The GraphQL specification makes both request errors (GetOperation, CoerceVariableValues): the
//! request fails whole, without `data`. async-graphql does neither in time for that: it chooses
//! the operation after every extension hook, so its "Unknown operation named" error has no
//! `extensions.code`, and it reads variables only where a field uses them, so a required
//! variable that was not sent fails that field alone, after the fields before it have run
//! (mutations included). This extension does both as soon as the document is parsed; its
//! errors are `GRAPHQL_VALIDATION_FAILED`, like the variable errors async-graphql's validation
//! finds itself.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{Request, ServerResult, Value, Variables};

use crate::graphql::errors::{VALIDATION_FAILED, coded_error};

/// The operation of `document` that `operation_name` names or, without a name, its only one,
/// with the operation's own name (`None` when it is anonymous); an error saying why when there
/// is no such operation.
pub(crate) fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<(Option<&'a str>, &'a OperationDefinition), String> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => Ok((None, &operation.node)),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .iter()
            .next()
            .map(|(name, operation)| (Some(name.as_str()), &operation.node))
            .ok_or_else(|| "the document has no operation".to_owned()),
        (DocumentOperations::Multiple(_), None) => Err(
            "the document has several operations: name the one to run in `operationName`".into(),
        ),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .get_key_value(name)
            .map(|(name, operation)| (Some(name.as_str()), &operation.node))
            .ok_or_else(|| format!("the document has no operation named \"{name}\"")),
        (DocumentOperations::Single(_), Some(name)) => Err(format!(
            "the document has no operation named \"{name}\": its only operation is anonymous"
        )),
    }
}

/// The schema extension that refuses requests whose operation or variables cannot be used.
pub struct OperationCheck;

impl ExtensionFactory for OperationCheck {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationCheckRun::default())
    }
}

/// One request's run of [`OperationCheck`].
#[derive(Default)]
struct OperationCheckRun {
    /// The request's `operationName`, which the parsing hook is not given.
    operation_name: Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationCheckRun {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.operation_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone_from(&request.operation_name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation_name = self
            .operation_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let (_, operation) = selected_operation(&document, operation_name.as_deref())
            .map_err(|message| coded_error(message, None, VALIDATION_FAILED))?;
        check_variables(operation, variables)?;
        Ok(document)
    }
}

/// Refuses `variables` that leave a non-null variable of `operation` without a value: missing
/// with no default, or `null` (which a default does not replace).
fn check_variables(operation: &OperationDefinition, variables: &Variables) -> ServerResult<()> {
    for definition in &operation.variable_definitions {
        let definition = &definition.node;
        let ty = &definition.var_type.node;
        if ty.nullable {
            continue;
        }
        let name = &definition.name.node;
        let message = match variables.get(name) {
            Some(Value::Null) => {
                format!("Variable \"${name}\" of non-null type \"{ty}\" must not be null.")
            }
            None if definition.default_value.is_none() => {
                format!("Variable \"${name}\" of required type \"{ty}\" was not provided.")
            }
            _ => continue,
        };
        return Err(coded_error(
            message,
            Some(definition.name.pos),
            VALIDATION_FAILED,
        ));
    }
    Ok(())
}
