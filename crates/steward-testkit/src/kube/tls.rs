//! HTTPS for the test server: a fresh self-signed certificate for 127.0.0.1 per server. kubectl
//! (client-go) sends bearer tokens only over TLS, so token tests with kubectl need this.

use std::sync::Arc;

/// The certificate (PEM, for kubeconfig's `certificate-authority-data`) and the server's TLS setup.
pub(crate) fn self_signed() -> (String, Arc<rustls::ServerConfig>) {
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("static subject names are valid");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "steward-testkit kube-apiserver");
    let key = rcgen::KeyPair::generate().expect("generate a TLS key");
    let cert = params
        .self_signed(&key)
        .expect("self-sign the TLS certificate");
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // The provider is named here so the server never depends on a process-wide default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)
        .expect("the generated key matches its certificate");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (cert.pem(), Arc::new(config))
}
