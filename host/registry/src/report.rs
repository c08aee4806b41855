//! An error and its causes as one line: errors print their own message
//! only (the cause is `source`), so whoever keeps or shows the text of a
//! failure (a package's load error, a `.reason` file, a reply) asks here.

/// `error: cause: cause's cause`.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_once_in_order() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(super::explain(&error), "outer: inner");
    }
}
