//! Tenants: every database and every in-memory registry belongs to one.

use std::fmt;

use crate::DatabaseError;

/// A tenant's name: lower-case ASCII letters, digits and `_`, starting with a
/// letter, at most 48 characters. It names a PostgreSQL schema or a SQLite
/// file, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// The tenant everything belongs to when no tenant is named.
    pub const PUBLIC: &'static str = "public";

    pub fn new(name: impl Into<String>) -> Result<Self, DatabaseError> {
        let name = name.into();
        let invalid = |reason| DatabaseError::InvalidTenant {
            name: name.clone(),
            reason,
        };
        if name.is_empty() || name.len() > 48 {
            return Err(invalid("it must be 1 to 48 characters long"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it must start with a lower-case letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                "only lower-case letters, digits and `_` are allowed",
            ));
        }
        if name.starts_with("pg_") {
            return Err(invalid("`pg_` names are reserved by PostgreSQL"));
        }
        Ok(TenantId(name))
    }

    pub fn public() -> Self {
        TenantId(Self::PUBLIC.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_public(&self) -> bool {
        self.0 == Self::PUBLIC
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::public()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_schema_safe_names_only() {
        assert!(TenantId::new("acme_2").is_ok());
        for bad in ["", "Acme", "2acme", "acme-corp", "a\"; drop", "pg_catalog"] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TenantId::new("a".repeat(49)).is_err());
    }
}
