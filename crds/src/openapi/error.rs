//! Why an OpenAPI document cannot be turned into tools. Every message names the Agent tool, the
//! operation or the place in the document, and what to change.

use super::{MAX_DOCUMENT_BYTES, MAX_OPERATIONS, MAX_SCHEMA_BYTES, MAX_TOTAL_BYTES};

/// A document, or a part of it, that cannot be offered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenApiError {
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    #[error(
        "tool {tool}: the OpenAPI document is {size} bytes, more than the {MAX_DOCUMENT_BYTES} allowed; \
         trim it to the operations the agent needs"
    )]
    TooLarge {
        /// The Agent tool.
        tool: String,
        /// Its size in bytes.
        size: usize,
    },
    /// Neither JSON nor YAML, or not an object.
    #[error("tool {tool}: the OpenAPI document is not a JSON or YAML object: {message}")]
    Parse {
        /// The Agent tool.
        tool: String,
        /// What the parser said.
        message: String,
    },
    /// A Swagger 2.0 document.
    #[error(
        "tool {tool}: the document is Swagger 2.0; only OpenAPI 3.0 and 3.1 are supported \
         (convert it, for example with swagger2openapi, or export oas30 from API Gateway)"
    )]
    Swagger2 {
        /// The Agent tool.
        tool: String,
    },
    /// `openapi` missing or another version.
    #[error(
        "tool {tool}: the document's openapi version is {found}; only 3.0.x and 3.1.x are supported"
    )]
    Version {
        /// The Agent tool.
        tool: String,
        /// What `openapi` holds, or `missing`.
        found: String,
    },
    /// More operations than may be offered and no selection.
    #[error(
        "tool {tool}: the document has {count} operations, more than the {MAX_OPERATIONS} one tool \
         may offer; list the ones to offer in operations"
    )]
    TooManyOperations {
        /// The Agent tool.
        tool: String,
        /// How many the document has.
        count: usize,
    },
    /// A selected operationId the document lacks.
    #[error(
        "tool {tool}: operations names {operation_id}, which the document does not have \
         (operationIds, derived ones included: {known})"
    )]
    UnknownOperation {
        /// The Agent tool.
        tool: String,
        /// The selected operationId.
        operation_id: String,
        /// The document's operationIds, comma-separated (cut when long).
        known: String,
    },
    /// A selected operation that cannot be offered.
    #[error("tool {tool}: operation {operation_id} ({at}) cannot be offered: {reason}")]
    Unsupported {
        /// The Agent tool.
        tool: String,
        /// Its operationId.
        operation_id: String,
        /// Method and path.
        at: String,
        /// Why, and what would work.
        reason: String,
    },
    /// Two operations end up with one tool name.
    #[error(
        "tool {tool}: operations {first} and {second} both become the tool name {name}; \
         give one of them another operationId, or select only one in operations"
    )]
    DuplicateName {
        /// The Agent tool.
        tool: String,
        /// The shared name.
        name: String,
        /// The first operation (operationId, method and path).
        first: String,
        /// The second.
        second: String,
    },
    /// Two operations share an operationId.
    #[error(
        "tool {tool}: operationId {operation_id} is used by both {first} and {second}; \
         operationIds must be unique"
    )]
    DuplicateOperationId {
        /// The Agent tool.
        tool: String,
        /// The operationId.
        operation_id: String,
        /// Method and path of the first.
        first: String,
        /// Method and path of the second.
        second: String,
    },
    /// A `$ref` to another document.
    #[error(
        "tool {tool}: {at}: $ref {reference} points outside the document; only local references \
         (#/components/...) are supported: bundle the document into one file"
    )]
    RemoteRef {
        /// The Agent tool.
        tool: String,
        /// JSON path of the `$ref`.
        at: String,
        /// The reference.
        reference: String,
    },
    /// A local `$ref` to nothing.
    #[error("tool {tool}: {at}: $ref {reference} points to nothing in the document")]
    BrokenRef {
        /// The Agent tool.
        tool: String,
        /// JSON path of the `$ref`.
        at: String,
        /// The reference.
        reference: String,
    },
    /// A `$ref` that leads back to itself.
    #[error(
        "tool {tool}: operation {operation_id}: recursive schema {chain}; tool input schemas must \
         be finite: replace the recursion with a plain object"
    )]
    RefCycle {
        /// The Agent tool.
        tool: String,
        /// The operation whose input holds it.
        operation_id: String,
        /// The references, `a -> b -> a`.
        chain: String,
    },
    /// An operation's input schema, expanded, is too large.
    #[error(
        "tool {tool}: operation {operation_id}: its input schema with every $ref expanded is \
         larger than {MAX_SCHEMA_BYTES} bytes; leave it out of operations or simplify its schema"
    )]
    SchemaTooLarge {
        /// The Agent tool.
        tool: String,
        /// The operation.
        operation_id: String,
    },
    /// All the offered operations together are too large for the runtime configuration.
    #[error(
        "tool {tool}: the selected operations take {size} bytes converted, more than the {MAX_TOTAL_BYTES} \
         allowed; select fewer in operations"
    )]
    TotalTooLarge {
        /// The Agent tool.
        tool: String,
        /// Their size.
        size: usize,
    },
    /// Nothing in the document can be offered.
    #[error("tool {tool}: the document has no operation that can be offered{why}")]
    NoOperations {
        /// The Agent tool.
        tool: String,
        /// `: ` and the reasons operations were skipped, or empty.
        why: String,
    },
}
