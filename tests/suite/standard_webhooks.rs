//! Standard Webhooks without a framework: `StandardWebhooks::verify` for any
//! sender, against the specification's own test vectors.

use std::time::Duration;

use shipment_webhooks::http::{HeaderMap, HeaderValue};
use shipment_webhooks::standard_webhooks::StandardWebhooks;
use shipment_webhooks::testing::standard_webhooks_signature;
use shipment_webhooks::{ConfigError, RejectionKind};
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature.to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    headers
}

/// Wide enough for the vectors' 2021 and 2022 timestamps.
fn keys(secret: &str) -> StandardWebhooks {
    StandardWebhooks::new(secret).max_age(Duration::from_secs(100 * 365 * 86_400))
}

#[test]
fn verifies_the_specifications_test_vector() {
    let proof = keys(SECRET)
        .verify(&headers(ID, TIMESTAMP, SIGNATURE), BODY)
        .unwrap();
    assert_eq!(proof.id, ID);
    assert_eq!(proof.timestamp.unix_timestamp(), TIMESTAMP);
    assert_eq!(proof.secret.label(), "primary");
}

#[test]
fn verifies_the_rust_librarys_vector() {
    let proof = keys("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .verify(
            &headers(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            br#"{"email":"test@example.com","username":"test_user"}"#,
        )
        .unwrap();
    assert_eq!(proof.id, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk");
}

#[test]
fn refuses_the_vector_with_the_default_window() {
    let error = StandardWebhooks::new(SECRET)
        .verify(&headers(ID, TIMESTAMP, SIGNATURE), BODY)
        .unwrap_err();
    assert_eq!(error.kind(), RejectionKind::Stale);
    assert!(error.to_string().contains("up to 300 s old"), "{error}");
}

#[test]
fn refuses_tampered_and_foreign_signatures() {
    let keys = keys(SECRET);
    let wrong = keys
        .verify(&headers(ID, TIMESTAMP + 1, SIGNATURE), BODY)
        .unwrap_err();
    assert_eq!(wrong.kind(), RejectionKind::SignatureMismatch);
    let tampered = keys
        .verify(
            &headers(
                ID,
                TIMESTAMP,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd",
            ),
            BODY,
        )
        .unwrap_err();
    assert_eq!(tampered.kind(), RejectionKind::MalformedProof);
    let missing = keys.verify(&HeaderMap::new(), BODY).unwrap_err();
    assert_eq!(missing.kind(), RejectionKind::MissingProof);
}

#[test]
fn a_fresh_signature_holds_and_rotation_names_the_secret() {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let keys = StandardWebhooks::new(SECRET).with_secret("next", other);
    let signature = standard_webhooks_signature(other, "msg_1", now, b"{}");
    let proof = keys
        .verify(&headers("msg_1", now, &signature), b"{}")
        .unwrap();
    assert_eq!(proof.secret.label(), "next");
    assert!(format!("{keys:?}").contains("next"));
    assert!(!format!("{keys:?}").contains("C2FVsBQI"));
    assert!(matches!(
        StandardWebhooks::try_new("whsec_!!"),
        Err(ConfigError::MalformedSecret { .. })
    ));
}
