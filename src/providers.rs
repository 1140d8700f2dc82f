//! Where shared code must reach a provider's own module by name: today only
//! the inbox, reading rows an older version stored in a provider's own
//! format. A new provider adds nothing here.

use crate::webhook::ProviderHeaders;

/// The provider headers an inbox of schema 1 stored (`provider`'s typed
/// headers as JSON), as every provider's are kept now; `None` for anything
/// else, such as headers stored by schema 2.
pub(crate) fn headers_of_schema_1(provider: &str, json: &str) -> Option<ProviderHeaders> {
    match provider {
        "shipmondo" => crate::shipmondo::headers_from_schema_1(json),
        _ => None,
    }
}
