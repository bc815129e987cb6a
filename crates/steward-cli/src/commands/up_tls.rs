//! The self-signed certificate `steward up` serves HTTPS with (and its example checks).

use anyhow::{Context, Result};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// Days a new certificate is valid.
const VALID_DAYS: i64 = 90;
/// A certificate with fewer days left is replaced at start-up.
const RENEW_BELOW_DAYS: i64 = 30;

/// PEM certificate and key in `dir`, made (or renewed) as needed.
pub fn certificate(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let expiry_path = dir.join("not-after");
    let fresh = std::fs::read_to_string(&expiry_path)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .is_some_and(|not_after| {
            not_after - OffsetDateTime::now_utc().unix_timestamp() > RENEW_BELOW_DAYS * 86_400
        });
    if fresh && let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(VALID_DAYS);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "steward up (self-signed)");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    std::fs::write(&cert_path, cert.pem())?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&expiry_path, params.not_after.unix_timestamp().to_string())?;
    Ok((cert.pem().into_bytes(), key.serialize_pem().into_bytes()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}
