//! The database URLs cloaca callers pass (../CLOACA.md section 4), mapped
//! onto the runtime's: `sqlite:///abs/path.db?mode=rwc&...` (the query is
//! SQLite's; the runtime sets WAL and a busy timeout itself), a bare
//! `sqlite:///name.db` in the working directory,
//! `sqlite://:memory:` and `:memory:` (a private file removed when the
//! runner stops: the runtime is durable by construction, so "memory" is a
//! scratch database no one else sees), `postgres://` and `postgresql://`.

use std::path::PathBuf;

use pyo3::prelude::*;

/// Where a runner's data lives.
#[derive(Debug)]
pub(crate) enum Location {
    /// A URL the runtime takes as it is.
    Url(String),
    /// A scratch SQLite file in a directory removed with it.
    Scratch(tempfile::TempDir),
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let trimmed = url.trim();
        if matches!(
            trimmed,
            ":memory:" | "sqlite://:memory:" | "sqlite::memory:"
        ) || trimmed.starts_with("sqlite://:memory:?")
        {
            let dir = tempfile::Builder::new()
                .prefix("cloaca-memory-")
                .tempdir()
                .map_err(|error| format!("cannot make a scratch database: {error}"))?;
            return Ok(Location::Scratch(dir));
        }
        if let Some(file) = trimmed.strip_prefix("sqlite:///")
            && !file.split('?').next().unwrap_or_default().contains('/')
        {
            // `sqlite:///app.db` (the seed's quick reference) means app.db
            // here, as SQLAlchemy reads it, not a file at the root.
            return Ok(Location::Url(format!("sqlite://{file}")));
        }
        match backend(trimmed) {
            Some(_) => Ok(Location::Url(trimmed.to_owned())),
            None => Err(format!(
                "unsupported database URL `{}`: use sqlite:///path/to/file.db, sqlite://:memory: or postgresql://user:password@host:port/database",
                cloacina_database::redact(trimmed)
            )),
        }
    }

    /// The URL the runtime opens.
    pub(crate) fn url(&self) -> String {
        match self {
            Location::Url(url) => url.clone(),
            Location::Scratch(dir) => {
                let file: PathBuf = dir.path().join("cloaca.db");
                format!("sqlite://{}", file.display())
            }
        }
    }
}

/// "sqlite" or "postgresql" for a URL of either, else None.
pub(crate) fn backend(url: &str) -> Option<&'static str> {
    if url.starts_with("sqlite:") || url == ":memory:" {
        Some("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some("postgresql")
    } else {
        None
    }
}

/// The backend a URL names: "sqlite", "postgresql", or None.
#[pyfunction]
pub(crate) fn backend_of(url: &str) -> Option<&'static str> {
    backend(url.trim())
}
