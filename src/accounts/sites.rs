//! Sites as their owners see them through the API: a page of them, one of them, create, rename,
//! delete. Every lookup is scoped to the owner, so another user's site and a site that does not exist
//! are the same [`AccountError::NotFound`].

use super::{AccountError, MAX_SITE_NAME, MAX_SITES_PER_USER};
use crate::store::{Site, Store, User, now_ms};

/// Sites per page of the list (the original's page size).
pub const PAGE_SIZE: i64 = 20;

/// A site with its pageview count, as every API answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedSite {
    pub site: Site,
    pub pageview_count: i64,
}

/// One page of a user's sites, newest first.
#[derive(Debug, Clone)]
pub struct SitePage {
    /// All of the user's sites.
    pub count: i64,
    /// 1-based.
    pub page: i64,
    pub has_next: bool,
    pub results: Vec<CountedSite>,
}

/// Page `page` (1-based) of the user's sites.
///
/// # Errors
/// `InvalidPage` for a page past the last (page 1 always exists, possibly empty).
pub async fn list(store: &Store, user: &User, page: i64) -> Result<SitePage, AccountError> {
    let count = store.count_sites_of_user(user.id).await?;
    let last_page = ((count + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    if page < 1 || page > last_page {
        return Err(AccountError::InvalidPage);
    }
    let rows = store.sites_of_user(user.id, PAGE_SIZE, (page - 1) * PAGE_SIZE, now_ms()).await?;
    let results = rows.into_iter().map(|(site, pageview_count)| CountedSite { site, pageview_count }).collect();
    Ok(SitePage { count, page, has_next: page < last_page, results })
}

/// The user's site with this API id.
///
/// # Errors
/// `NotFound` when the id is malformed, unknown, or someone else's.
pub async fn get(store: &Store, user: &User, id: &str) -> Result<Site, AccountError> {
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(AccountError::NotFound);
    }
    store.site_of_user(user.id, &id.to_ascii_lowercase()).await?.ok_or(AccountError::NotFound)
}

pub async fn get_counted(store: &Store, user: &User, id: &str) -> Result<CountedSite, AccountError> {
    let site = get(store, user, id).await?;
    counted(store, site).await
}

/// Creates a site named `name` for the user.
///
/// # Errors
/// `Invalid` for a missing, blank or overlong name; `SiteLimit` at [`MAX_SITES_PER_USER`].
pub async fn create(store: &Store, user: &User, name: Option<&str>) -> Result<CountedSite, AccountError> {
    let name = check_name(name)?;
    let site =
        store.create_site_within_limit(user.id, &name, MAX_SITES_PER_USER).await?.ok_or(AccountError::SiteLimit)?;
    Ok(CountedSite { site, pageview_count: 0 })
}

/// Renames the user's site. `name: None` (a PATCH without a name) changes nothing.
pub async fn rename(store: &Store, user: &User, id: &str, name: Option<&str>) -> Result<CountedSite, AccountError> {
    let site = get(store, user, id).await?;
    let site = match name {
        None => site,
        Some(name) => {
            let name = check_name(Some(name))?;
            store.rename_site(site.id, &name).await?.ok_or(AccountError::NotFound)?
        }
    };
    counted(store, site).await
}

/// Deletes the user's site and everything recorded for it.
pub async fn delete(store: &Store, user: &User, id: &str) -> Result<(), AccountError> {
    let site = get(store, user, id).await?;
    if store.delete_site(site.id).await? { Ok(()) } else { Err(AccountError::NotFound) }
}

async fn counted(store: &Store, site: Site) -> Result<CountedSite, AccountError> {
    let pageview_count = store.site_pageview_count(site.id, now_ms()).await?;
    Ok(CountedSite { site, pageview_count })
}

/// Trimmed, 1 to [`MAX_SITE_NAME`] characters.
pub(crate) fn check_name(name: Option<&str>) -> Result<String, AccountError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AccountError::Invalid("Site name is required".into()));
    }
    if name.chars().count() > MAX_SITE_NAME {
        return Err(AccountError::Invalid(format!("Site name must be at most {MAX_SITE_NAME} characters")));
    }
    Ok(name.to_string())
}
