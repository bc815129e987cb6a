//! Signed, expiring URLs for the local artifact store: HMAC-SHA256 over the method, the path
//! and the expiry, checked in constant time.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use steward_model::wire::SignedUrl;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks URLs with one secret key.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

/// The query part of a signed URL.
#[derive(Debug, serde::Deserialize)]
pub struct Signature {
    /// Unix seconds after which the URL is refused.
    pub expires: Option<i64>,
    /// Hex HMAC.
    pub sig: Option<String>,
}

impl UrlSigner {
    /// A signer with this key (32 random bytes are plenty).
    pub fn new(key: Vec<u8>) -> Self {
        UrlSigner { key }
    }

    fn mac(&self, method: &str, path: &str, expires: i64) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// An absolute URL allowing `method` on `path` until `expires_at`.
    pub fn sign(
        &self,
        base_url: &str,
        method: &str,
        path: &str,
        expires_at: DateTime<Utc>,
    ) -> SignedUrl {
        let expires = expires_at.timestamp();
        let sig = hex::encode(self.mac(method, path, expires).finalize().into_bytes());
        SignedUrl {
            url: format!(
                "{}{path}?expires={expires}&sig={sig}",
                base_url.trim_end_matches('/')
            ),
            method: method.to_string(),
            expires_at,
            headers: Default::default(),
            max_bytes: None,
        }
    }

    /// Accepts the request only if the signature matches `method` and `path` and has not
    /// expired.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        signature: &Signature,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let (Some(expires), Some(sig)) = (signature.expires, signature.sig.as_deref()) else {
            return Err(ApiError::Forbidden(
                "this URL is not signed; ask the API for a signed URL".into(),
            ));
        };
        let Ok(sig) = hex::decode(sig) else {
            return Err(ApiError::Forbidden(
                "the URL's signature is malformed".into(),
            ));
        };
        // Checked before the expiry so that a tampered URL never learns more than "no".
        self.mac(method, path, expires)
            .verify_slice(&sig)
            .map_err(|_| {
                ApiError::Forbidden(
                    "the URL's signature does not match this path and method".into(),
                )
            })?;
        if now.timestamp() > expires {
            return Err(ApiError::Forbidden(
                "the signed URL has expired; ask the API for a new one".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn query(url: &str) -> (String, Signature) {
        let (path, query) = url.trim_start_matches("http://h").split_once('?').unwrap();
        let mut expires = None;
        let mut sig = None;
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().ok(),
                ("sig", v) => sig = Some(v.to_string()),
                _ => {}
            }
        }
        (path.to_string(), Signature { expires, sig })
    }

    #[test]
    fn a_signed_url_works_for_its_method_and_path_until_it_expires() {
        let signer = UrlSigner::new(b"k".repeat(32));
        let now = Utc::now();
        let url = signer.sign(
            "http://h/",
            "GET",
            "/api/v1/artifacts/r/log.html",
            now + Duration::minutes(5),
        );
        let (path, sig) = query(&url.url);
        assert!(signer.verify("GET", &path, &sig, now).is_ok());
        assert!(
            signer.verify("PUT", &path, &sig, now).is_err(),
            "method is bound"
        );
        assert!(
            signer
                .verify("GET", "/api/v1/artifacts/r/stdout.txt", &sig, now)
                .is_err(),
            "path is bound"
        );
        let late = signer
            .verify("GET", &path, &sig, now + Duration::minutes(6))
            .unwrap_err();
        assert!(late.to_string().contains("expired"));
        let other = UrlSigner::new(b"x".repeat(32));
        assert!(
            other.verify("GET", &path, &sig, now).is_err(),
            "key is bound"
        );
    }

    #[test]
    fn tampered_or_missing_signatures_are_refused() {
        let signer = UrlSigner::new(vec![7; 32]);
        let now = Utc::now();
        let url = signer.sign("http://h", "PUT", "/a", now + Duration::minutes(1));
        let (path, mut sig) = query(&url.url);
        sig.expires = sig.expires.map(|e| e + 3600);
        assert!(
            signer.verify("PUT", &path, &sig, now).is_err(),
            "extending the expiry breaks the signature"
        );
        let (_, mut sig) = query(&url.url);
        sig.sig = Some("zz".into());
        assert!(
            signer
                .verify("PUT", &path, &sig, now)
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
        assert!(
            signer
                .verify(
                    "PUT",
                    &path,
                    &Signature {
                        expires: None,
                        sig: None
                    },
                    now
                )
                .is_err()
        );
    }
}
