//! The two list shapes: `{items, total}`, and the same with `tenant_id`
//! for tenant-scoped lists.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    /// Every item there is, not only this page.
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantListResponse<T> {
    pub tenant_id: String,
    pub items: Vec<T>,
    /// Every item there is, not only this page.
    pub total: u64,
}
