//! Errors raised into Python as the classes of `cloaca._errors`, so that
//! each one is also the built-in error cloaca 0.8.0 raised in its place.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// An instance of `cloaca._errors.<class>` carrying `message`.
pub(crate) fn raise(py: Python<'_>, class: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match py
        .import("cloaca._errors")
        .and_then(|errors| errors.getattr(class))
    {
        Ok(class) => PyErr::from_type(
            class
                .cast_into()
                .unwrap_or_else(|_| py.get_type::<PyRuntimeError>()),
            message,
        ),
        Err(_) => PyRuntimeError::new_err(message),
    }
}
