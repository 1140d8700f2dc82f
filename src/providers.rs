//! Where shared code must reach a provider's own module by name: today only
//! the inbox's migration of rows an older version stored in a provider's
//! own format. A new provider adds nothing here.

/// The provider headers an inbox of schema 1 stored (`provider`'s typed
/// headers as JSON), as schema 2 stores every provider's; `None` where there
/// is nothing to change.
pub(crate) fn upgrade_schema_1_headers(provider: &str, json: &str) -> Option<String> {
    match provider {
        "shipmondo" => crate::shipmondo::headers_from_schema_1(json),
        _ => None,
    }
}
