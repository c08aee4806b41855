//! An error and its causes as one line. Errors in this workspace print
//! their own message only (the cause is `source`), so whoever keeps or
//! shows the text of a failure (a package's load error, a `.reason` file,
//! a reply, the CLI's last line) asks here. It lives in the contract crate
//! because every crate, plugin-facing or host, depends on it.

/// `error: cause: cause's cause`. A cause whose text its error already
/// ends with (libraries that print their source themselves) is not
/// repeated.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let said = error.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("talking: {0}")]
    struct SaysItsCause(#[source] std::io::Error);

    #[test]
    fn every_cause_once_in_order() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(super::explain(&error), "outer: inner");
        let error = SaysItsCause(std::io::Error::other("refused"));
        assert_eq!(super::explain(&error), "talking: refused");
    }
}
