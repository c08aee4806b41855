//! `#[task]`: turns a function into a declared, callable task.
//!
//! The declaration is built here, at compile time, with the contract's own
//! types, and embedded as canonical JSON. So a misspelt policy value
//! (`backoff = "exponentail"`) or an unknown attribute is a compile error
//! pointing at the typo, never a silent default at run time.

use cloacina_contract::Identifier;
use cloacina_contract::manifest::{Backoff, RetryCondition, RetryPolicy, TaskDeclaration};
use proc_macro::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{Expr, ItemFn, Lit, LitStr, parse_macro_input};

/// Declares a task.
///
/// ```ignore
/// #[task(dependencies = ["extract"], timeout_ms = 5000,
///        retry(max_attempts = 3, backoff = "exponential", delay_ms = 100,
///              max_delay_ms = 2000, jitter = true, condition = "retryable"))]
/// fn transform(ctx: &Context) -> TaskResult { ... }
/// ```
///
/// Attributes: `id` (default: the function's name), `description`,
/// `dependencies` (bare names are the task functions in scope, checked at
/// compile time; strings are task ids, checked at pack time), `timeout_ms`,
/// `retry(...)`, `invokes = "graph"` (an invoked graph run after the body,
/// within the same attempt; its nodes' outputs join the task's). The
/// function takes
/// `&cloacina_plugin::Context` and returns `Result<T, E>`: `T` any
/// `Serialize` type whose JSON is an object (a struct, a map, `json!({..})`)
/// or null, `E` anything `Into<TaskError>` (`cloacina_plugin::TaskResult<T>`).
#[proc_macro_attribute]
pub fn task(attributes: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let mut declaration = TaskDeclaration {
        id: match Identifier::new(function.sig.ident.to_string()) {
            Ok(id) => id,
            Err(error) => {
                return syn::Error::new(function.sig.ident.span(), error)
                    .to_compile_error()
                    .into();
            }
        },
        description: String::new(),
        dependencies: Vec::new(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    };
    let mut named_dependencies = Vec::new();
    let parser =
        syn::meta::parser(|meta| parse_attribute(&meta, &mut declaration, &mut named_dependencies));
    parse_macro_input!(attributes with parser);
    if declaration.description.is_empty() {
        declaration.description = doc_comment(&function);
    }
    let json = match serde_json::to_string(&declaration) {
        Ok(json) => json,
        Err(error) => {
            return syn::Error::new(function.sig.ident.span(), error)
                .to_compile_error()
                .into();
        }
    };
    let dependency_names: Vec<String> =
        named_dependencies.iter().map(ToString::to_string).collect();
    let dependency_messages: Vec<String> = dependency_names
        .iter()
        .map(|dependency| {
            format!(
                "dependency `{dependency}` is a task with another id: name it by its id, as a string"
            )
        })
        .collect();
    let name = &function.sig.ident;
    let visibility = &function.vis;
    let id = declaration.id.as_str();
    quote! {
        #function

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #visibility mod #name {
            // Dependencies named bare must be task functions in scope: a
            // misspelt one is a compile error pointing at it.
            #[allow(unused_imports)]
            use super::{#(#named_dependencies as _),*};
            // ...whose id is their name (a task with its own `id` is
            // named by that id, as a string).
            #(
                const _: () = assert!(
                    ::cloacina_plugin::__same_str(super::#named_dependencies::ID, #dependency_names),
                    #dependency_messages
                );
            )*

            /// The task's id.
            pub const ID: &str = #id;

            /// The task's declaration and entry point, for `plugin!`.
            pub fn definition() -> ::cloacina_plugin::TaskDefinition {
                ::cloacina_plugin::TaskDefinition::new(#id, #json, run)
            }

            /// The task, its output serialized and checked.
            fn run(ctx: &::cloacina_plugin::Context<'_>) -> ::cloacina_plugin::TaskResult {
                ::cloacina_plugin::into_output(#id, super::#name(ctx))
            }
        }
    }
    .into()
}

fn parse_attribute(
    meta: &ParseNestedMeta<'_>,
    declaration: &mut TaskDeclaration,
    named_dependencies: &mut Vec<syn::Ident>,
) -> syn::Result<()> {
    match key_of(meta).as_str() {
        "id" => {
            let text: LitStr = meta.value()?.parse()?;
            declaration.id = identifier(&text.value(), text.span())?;
        }
        "description" => declaration.description = meta.value()?.parse::<LitStr>()?.value(),
        "timeout_ms" => declaration.timeout_ms = Some(integer(meta)?),
        "invokes" => {
            let text: LitStr = meta.value()?.parse()?;
            declaration.invokes = Some(identifier(&text.value(), text.span())?);
        }
        "dependencies" => {
            let list: syn::ExprArray = meta.value()?.parse()?;
            for element in list.elems {
                let (text, span) = match &element {
                    Expr::Lit(literal) => match &literal.lit {
                        Lit::Str(text) => (text.value(), text.span()),
                        other => return Err(syn::Error::new(other.span(), "expected a task name")),
                    },
                    Expr::Path(path) => match path.path.get_ident() {
                        Some(ident) => {
                            named_dependencies.push(ident.clone());
                            (ident.to_string(), ident.span())
                        }
                        None => return Err(syn::Error::new(path.span(), "expected a task name")),
                    },
                    other => return Err(syn::Error::new(other.span(), "expected a task name")),
                };
                declaration.dependencies.push(identifier(&text, span)?);
            }
        }
        "retry" => meta.parse_nested_meta(|retry| parse_retry(&retry, &mut declaration.retry))?,
        _ => {
            return Err(meta.error(
                "unknown task attribute; expected id, description, dependencies, timeout_ms, invokes or retry(...)",
            ));
        }
    }
    Ok(())
}

fn parse_retry(meta: &ParseNestedMeta<'_>, retry: &mut RetryPolicy) -> syn::Result<()> {
    match key_of(meta).as_str() {
        "max_attempts" => {
            retry.max_attempts = u32::try_from(integer(meta)?)
                .map_err(|_| meta.error("max_attempts is too large"))?;
        }
        "delay_ms" => retry.delay_ms = integer(meta)?,
        "max_delay_ms" => retry.max_delay_ms = Some(integer(meta)?),
        "jitter" => retry.jitter = meta.value()?.parse::<syn::LitBool>()?.value,
        "backoff" => retry.backoff = policy_value::<Backoff>(meta, "fixed, linear, exponential")?,
        "condition" => {
            retry.condition = policy_value::<RetryCondition>(meta, "retryable, timeout, never")?;
        }
        _ => {
            return Err(meta.error(
                "unknown retry setting; expected max_attempts, backoff, delay_ms, max_delay_ms, jitter or condition",
            ));
        }
    }
    Ok(())
}

/// The attribute's name (`timeout_ms` in `timeout_ms = 5000`).
fn key_of(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A string that must name one variant of a policy enum.
fn policy_value<T: serde::de::DeserializeOwned>(
    meta: &ParseNestedMeta<'_>,
    expected: &str,
) -> syn::Result<T> {
    let text: LitStr = meta.value()?.parse()?;
    serde_json::from_value(serde_json::Value::String(text.value())).map_err(|_| {
        syn::Error::new(
            text.span(),
            format!("`{}` is not one of: {expected}", text.value()),
        )
    })
}

fn integer(meta: &ParseNestedMeta<'_>) -> syn::Result<u64> {
    meta.value()?.parse::<syn::LitInt>()?.base10_parse()
}

fn identifier(text: &str, span: proc_macro2::Span) -> syn::Result<Identifier> {
    Identifier::new(text).map_err(|error| syn::Error::new(span, error))
}

/// The first paragraph of the function's doc comment.
fn doc_comment(function: &ItemFn) -> String {
    function
        .attrs
        .iter()
        .filter(|attribute| attribute.path().is_ident("doc"))
        .filter_map(|attribute| match &attribute.meta {
            syn::Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(literal) => match &literal.lit {
                    Lit::Str(text) => Some(text.value().trim().to_owned()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
