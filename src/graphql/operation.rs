//! Chooses the operation a request runs and checks its variables, before anything runs.
//!
//! The GraphQL specification makes both request errors (GetOperation, CoerceVariableValues): the
//! request fails whole, without `data`. async-graphql does neither in time for that: it chooses
//! the operation after every extension hook, so its "Unknown operation named" error has no
//! `extensions.code`, and it reads variables only where a field uses them, so a required
//! variable that was not sent fails that field alone, after the fields before it have run
//! (mutations included). [`DocumentChecks`](crate::graphql::DocumentChecks) does both before
//! validation, on every request; the errors are `GRAPHQL_VALIDATION_FAILED`, like the variable
//! errors async-graphql's validation finds itself.

use async_graphql::parser::types::{DocumentOperations, OperationDefinition};
use async_graphql::{ServerResult, Value, Variables};

use crate::graphql::errors::{VALIDATION_FAILED, coded_error};

/// The operation among `operations` that `operation_name` names or, without a name, the only
/// one, with the operation's own name (`None` when it is anonymous); an error saying why when
/// there is no such operation.
pub(crate) fn selected_operation<'a>(
    operations: &'a DocumentOperations,
    operation_name: Option<&str>,
) -> Result<(Option<&'a str>, &'a OperationDefinition), String> {
    match (operations, operation_name) {
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

/// Refuses `variables` that leave a non-null variable of `operation` without a value: missing
/// with no default, or `null` (which a default does not replace).
pub(crate) fn check_variables(
    operation: &OperationDefinition,
    variables: &Variables,
) -> ServerResult<()> {
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
