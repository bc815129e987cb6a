//! Secret providers against real protocol peers: the Vault stand-in (Vault's KV v2 and login
//! envelopes) and the in-memory Kubernetes API server, through the runner's resolver.

use serde_json::json;
use std::time::Duration;
use steward_model::workspace::SecretRef;
use steward_runner::secrets::SecretResolver;
use steward_runner::secrets::config::SecretsConfig;
use steward_testkit::kube::{Access, KubeApiServer, Rule, write_kubeconfig};
use steward_testkit::vault::VaultServer;

fn key(name: &str, key: &str) -> SecretRef {
    SecretRef {
        name: name.into(),
        workspace_key: key.into(),
    }
}

fn resolver(yaml: &str) -> SecretResolver {
    let config: SecretsConfig = serde_yaml::from_str(yaml).unwrap();
    SecretResolver::new(None, &config, Some("steward".into())).unwrap()
}

async fn value(resolver: &SecretResolver, workspace_key: &str) -> Result<String, String> {
    resolver
        .resolve(&[key("s", workspace_key)])
        .await
        .map(|mut v| v.remove(0).value)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn vault_approle_reads_kv2_fields_and_keeps_its_token() {
    let vault = VaultServer::start();
    vault.put("kv", "app", json!({"password": "pa55-word", "port": 5432}));
    vault.put("team/kv", "db/main", json!({"user": "admin"}));
    vault.add_approle("approle", "role-1", "secret-1");
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("STEWARD_TEST_VAULT_SECRET_ID", "secret-1\n") };
    let resolver = resolver(&format!(
        "secretCacheSeconds: 0\nsecretProviders:\n  corp-vault:\n    type: vault\n    vaultSecretProvider:\n      addr: {}\n      authMountPath: approle\n      roleID: role-1\n      secretID: env@STEWARD_TEST_VAULT_SECRET_ID\n",
        vault.url()
    ));
    assert_eq!(
        value(&resolver, "corp-vault@/kv/data/app:password").await,
        Ok("pa55-word".into())
    );
    // Non-string fields arrive as their JSON text; nested mounts split at /data/.
    assert_eq!(
        value(&resolver, "corp-vault@kv/data/app:port").await,
        Ok("5432".into())
    );
    assert_eq!(
        value(&resolver, "corp-vault@team/kv/data/db/main:user").await,
        Ok("admin".into())
    );
    assert_eq!(vault.logins(), 1, "one login serves every read");
    assert_eq!(vault.reads(), 3);

    let err = value(&resolver, "corp-vault@kv/data/app:pasword")
        .await
        .unwrap_err();
    assert!(
        err.contains("no field pasword") && err.contains("password, port"),
        "{err}"
    );
    let err = value(&resolver, "corp-vault@kv/data/missing:x")
        .await
        .unwrap_err();
    assert!(
        err.contains("HTTP 404") && err.contains("<mount>/data/<path>"),
        "{err}"
    );
    let err = value(&resolver, "corp-vault@kv/data/app")
        .await
        .unwrap_err();
    assert!(err.contains("names a field"), "{err}");

    // A revoked token is replaced by a new login, without failing the read.
    vault.revoke_tokens();
    assert_eq!(
        value(&resolver, "corp-vault@kv/data/app:password").await,
        Ok("pa55-word".into())
    );
    assert_eq!(vault.logins(), 2);
}

#[tokio::test]
async fn vault_tokens_are_renewed_before_their_lease_ends_and_values_cached() {
    let vault = VaultServer::start();
    vault.put("secret", "app", json!({"token": "t0ken-value"}));
    vault.add_approle("approle", "r", "s");
    vault.set_token_ttl(Duration::from_secs(1));
    let resolver = resolver(&format!(
        "secretCacheSeconds: 1\nsecretProviders:\n  v:\n    type: vault\n    vault: {{addr: '{}', roleID: r, secretID: s}}\n",
        vault.url()
    ));
    for _ in 0..3 {
        assert_eq!(
            value(&resolver, "v@secret/data/app:token").await,
            Ok("t0ken-value".into())
        );
    }
    assert_eq!(
        (vault.logins(), vault.reads()),
        (1, 1),
        "cached for a second"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        value(&resolver, "v@secret/data/app:token").await,
        Ok("t0ken-value".into())
    );
    assert_eq!(
        (vault.logins(), vault.reads()),
        (2, 2),
        "new login at 80% of the lease"
    );
}

#[tokio::test]
async fn vault_kubernetes_auth_and_bad_credentials() {
    let vault = VaultServer::start();
    vault.put("kv", "app", json!({"password": "k8s-auth-value"}));
    vault.add_kubernetes_role("kubernetes", "steward-runner", "jwt-of-the-runner");
    vault.add_approle("approle", "r", "s");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "jwt-of-the-runner\n").unwrap();
    let resolver = resolver(&format!(
        "secretProviders:\n  k:\n    type: vault\n    vault: {{addr: '{url}', role: steward-runner, serviceAccountTokenPath: '{}'}}\n  wrong:\n    type: vault\n    vault: {{addr: '{url}', roleID: r, secretID: nope}}\n  gone:\n    type: vault\n    vault: {{addr: 'http://127.0.0.1:1', token: t}}\n",
        token.display(),
        url = vault.url()
    ));
    assert_eq!(
        value(&resolver, "k@kv/data/app:password").await,
        Ok("k8s-auth-value".into())
    );
    let err = value(&resolver, "wrong@kv/data/app:password")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("secret s (wrong@kv/data/app:password): Vault wrong at http://127.0.0.1:")
            && err.contains("AppRole login failed: HTTP 400: invalid role or secret ID")
            && err.contains("credentials"),
        "{err}"
    );
    let err = value(&resolver, "gone@kv/data/app:password")
        .await
        .unwrap_err();
    assert!(err.contains("Vault gone at http://127.0.0.1:1"), "{err}");
    let err = value(&resolver, "nobody@kv/data/app:password")
        .await
        .unwrap_err();
    assert!(err.contains("configured: gone, k, wrong"), "{err}");
}

/// One test holds every Kubernetes case: the client comes from `$KUBECONFIG`, which is
/// process-wide.
#[tokio::test]
async fn kubernetes_secrets_and_configmaps_through_the_api() {
    let server = KubeApiServer::builder()
        .yaml(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: kubeconfig, namespace: steward}\ndata: {kubeconfig: YXBpVmVyc2lvbjogdjEK, other: eA==}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData: {password: from-shop}\ntype: Opaque\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: steward}\ndata: {url: 'https://example.invalid'}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: approle, namespace: steward}\ndata: {secret-id: c2VjcmV0LTE=}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: root, namespace: kube-system}\ndata: {token: eA==}\n",
        )
        .unwrap()
        .token(
            "runner",
            Access::AllowOnly(vec![
                Rule::new("get", "secrets").in_namespace("steward"),
                Rule::new("get", "secrets").in_namespace("shop"),
                Rule::new("get", "configmaps").in_namespace("steward"),
            ]),
        )
        .start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    write_kubeconfig(&kubeconfig, &[server.context("runner", "runner")]).unwrap();
    // SAFETY: the only test in this binary that reads it.
    unsafe { std::env::set_var("KUBECONFIG", &kubeconfig) };

    let vault = VaultServer::start();
    vault.put("kv", "app", json!({"password": "via-k8s-credentials"}));
    vault.add_approle("approle", "role-1", "secret-1");
    let resolver = resolver(&format!(
        "blockedSecrets: ['k8s:*@kube-system/']\nsecretProviders:\n  corp:\n    type: vault\n    vault: {{addr: '{}', roleID: role-1, secretID: 'k8s:file@secret/approle:secret-id'}}\n",
        vault.url()
    ));
    let cases = [
        ("k8s:file@secret/kubeconfig:kubeconfig", "apiVersion: v1\n"),
        ("k8s:env@shop/secret/db:password", "from-shop"),
        ("k8s:file@configmap/settings:url", "https://example.invalid"),
        ("corp@kv/data/app:password", "via-k8s-credentials"),
    ];
    for (workspace_key, want) in cases {
        assert_eq!(
            value(&resolver, workspace_key).await.as_deref(),
            Ok(want),
            "{workspace_key}"
        );
    }
    for (workspace_key, needle) in [
        (
            "k8s:file@secret/kubeconfig:kubeconf",
            "has no key kubeconf (keys: kubeconfig, other)",
        ),
        (
            "k8s:file@secret/absent:x",
            "secret steward/absent does not exist",
        ),
        (
            "k8s:file@other/secret/x:y",
            "grant its service account `get` on secrets in namespace other",
        ),
        (
            "k8s:file@kube-system/secret/root:token",
            "blockedSecrets entry \"k8s:*@kube-system/\"",
        ),
    ] {
        let err = value(&resolver, workspace_key).await.unwrap_err();
        assert!(err.contains(needle), "{workspace_key}: {err}");
    }
    assert_eq!(
        server.requests("get", "secrets"),
        6,
        "the blocked key never reached the API"
    );
}
