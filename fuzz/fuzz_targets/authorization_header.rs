//! Fuzzes the `Authorization` header parser (Bearer and Basic, base64, UTF-8) and tenant,
//! role and scope names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor_api::auth::parse_authorization(text);
        let _ = text.parse::<dozor_model::TenantId>();
        let _ = text.parse::<dozor_model::ScopeSet>();
        let _ = text.parse::<dozor_model::Role>();
    }
});
