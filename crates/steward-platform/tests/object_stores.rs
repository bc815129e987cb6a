//! Artifacts in object stores, through each store's own presigned URLs: S3 against moto,
//! Azure Blob against Azurite (which checks SAS signatures, so the refusals are tested there),
//! GCS against the GCS emulator (a smoke test: it does not check signatures).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use steward_model::run::{ArtifactRef, RunStatus};
use steward_model::wire::{CompleteRequest, SignedUrl};
use steward_platform::PlatformConfig;
use steward_testkit::{Process, free_port, python_env, wait_until};

const BODY: &str = "<html>the run's log</html>";

/// Runs one run through the platform: upload `log.html` through the URL the platform signs,
/// complete, and return the signed upload and the download link the API gives.
async fn round_trip(tune: impl FnOnce(&mut PlatformConfig)) -> (TestPlatform, SignedUrl, Value) {
    let p = start(&TestDb::Sqlite, tune).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    p.session("web", &[]).await;
    let lease = runner.poll(&poll_for(1)).await.leases.remove(0);
    let run = lease.run.run_id;
    let (status, signed) = runner
        .post(
            &format!("/api/v1/runner/runs/{run}/artifacts/log.html"),
            &json!({ "leaseId": lease.lease_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let signed: SignedUrl = serde_json::from_value(signed).unwrap();
    assert_eq!(signed.max_bytes, Some(64 * 1024 * 1024));
    let mut put = p.http.put(&signed.url).body(BODY);
    for (k, v) in &signed.headers {
        put = put.header(k, v);
    }
    let response = put.send().await.unwrap();
    let code = response.status();
    assert!(
        code.is_success(),
        "PUT to the store: {code} {}",
        response.text().await.unwrap()
    );

    let mut outcome = result(RunStatus::Succeeded, &[], &[]);
    outcome.artifacts = vec![ArtifactRef {
        name: "log.html".into(),
        size: BODY.len() as u64,
        truncated: 0,
    }];
    let done = CompleteRequest {
        lease_id: Some(lease.lease_id),
        spec: None,
        result: outcome,
    };
    let (status, _) = runner.complete(run, &done).await;
    assert_eq!(status, StatusCode::OK);
    let (_, links) = p.get(&format!("/api/v1/runs/{run}/artifacts")).await;
    assert_eq!(links[0]["name"], "log.html");
    assert_eq!(links[0]["size"], BODY.len());
    let link = links[0].clone();
    (p, signed, link)
}

fn start_server(name: &str, cmd: std::process::Command, dir: &Path, ready: &str) -> Process {
    let process = Process::spawn(name, cmd, &dir.join(format!("{name}.log")));
    wait_until(name, Duration::from_secs(60), || {
        reqwest::blocking::get(ready).ok().map(|_| ())
    });
    process
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_presigned_put_and_get_round_trip_against_moto() {
    let python = python_env("moto", &["moto[server]==5.1.18", "boto3"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(python.parent().unwrap().join("moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let _moto = tokio::task::block_in_place(|| start_server("moto", cmd, dir.path(), &endpoint));
    assert!(
        p_put(&format!("{endpoint}/logs")).await.is_success(),
        "bucket created"
    );

    let options = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test-secret"),
        ("aws_region", "us-east-1"),
    ];
    let (p, signed, link) = round_trip(|c| {
        c.artifacts_url = Some("s3://logs/steward".into());
        c.artifacts_options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    })
    .await;
    assert!(signed.url.contains("X-Amz-Signature="), "{}", signed.url);
    assert!(
        signed.url.contains("/logs/steward/runs/"),
        "the prefix is kept: {}",
        signed.url
    );
    let got = p
        .http
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.unwrap(), BODY);

    // moto does not check signatures; botocore recomputes the PUT URL's and must agree.
    let check = r#"
import sys, datetime, urllib.parse
from unittest import mock
import botocore.auth, botocore.credentials
from botocore.awsrequest import AWSRequest
url, key, secret, method = sys.argv[1:5]
u = urllib.parse.urlsplit(url); q = dict(urllib.parse.parse_qsl(u.query))
when = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
region = q["X-Amz-Credential"].split("/")[2]
req = AWSRequest(method=method, url=urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, "", "")))
auth = botocore.auth.S3SigV4QueryAuth(botocore.credentials.Credentials(key, secret), "s3", region, expires=int(q["X-Amz-Expires"]))
# Sign at the URL's own time (botocore reads the clock through get_current_datetime).
with mock.patch("botocore.auth.get_current_datetime", return_value=when):
    auth.add_auth(req)
ours = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.url).query))["X-Amz-Signature"]
if ours != q["X-Amz-Signature"]:
    print("given:", url, file=sys.stderr)
    print("botocore:", req.url, file=sys.stderr)
sys.exit(0 if ours == q["X-Amz-Signature"] else 1)
"#;
    for (url, method) in [
        (signed.url.as_str(), "PUT"),
        (link["url"].as_str().unwrap(), "GET"),
    ] {
        let output = std::process::Command::new(&python)
            .args(["-c", check, url, "test", "test-secret", method])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "botocore disagrees with the {method} signature: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

async fn p_put(url: &str) -> StatusCode {
    reqwest::Client::new()
        .put(url)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_sas_urls_work_and_are_refused_when_tampered_misused_or_expired() {
    let bin = steward_testkit::npm_tool("azurite", "3.35.0");
    let python = python_env("azure-blob", &["azure-storage-blob"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let account = "devstoreaccount1";
    let key =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let endpoint = format!("http://127.0.0.1:{port}/{account}");
    let mut cmd = std::process::Command::new(bin.join("azurite-blob"));
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--skipApiVersionCheck",
        "--disableTelemetry",
    ])
    .arg("--location")
    .arg(dir.path().join("azurite"));
    let _azurite = tokio::task::block_in_place(|| {
        start_server(
            "azurite",
            cmd,
            dir.path(),
            &format!("http://127.0.0.1:{port}/"),
        )
    });
    let create = format!(
        "from azure.storage.blob import BlobServiceClient\nBlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};').create_container('logs')"
    );
    let output = std::process::Command::new(&python)
        .args(["-c", &create])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let options = [
        ("azure_storage_account_name", account),
        ("azure_storage_account_key", key),
        ("azure_storage_endpoint", endpoint.as_str()),
        ("azure_allow_http", "true"),
    ];
    let (p, signed, link) = round_trip(|c| {
        c.artifacts_url = Some("az://logs/steward".into());
        c.artifacts_options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.url_ttl = Duration::from_secs(3);
    })
    .await;
    assert_eq!(
        signed.headers.get("x-ms-blob-type").map(String::as_str),
        Some("BlockBlob")
    );
    let get_url = link["url"].as_str().unwrap().to_string();
    let got = p.http.get(&get_url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.unwrap(), BODY);

    let status = |url: String, method: reqwest::Method| {
        let http = p.http.clone();
        async move {
            http.request(method, url)
                .header("x-ms-blob-type", "BlockBlob")
                .body("x")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let sig_at = get_url.find("sig=").unwrap() + 4;
    let mut tampered = get_url.clone();
    let flipped = if &tampered[sig_at..sig_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(
        status(tampered, reqwest::Method::GET).await,
        StatusCode::FORBIDDEN,
        "tampered signature"
    );
    assert_eq!(
        status(
            get_url.replace("log.html", "stdout.txt"),
            reqwest::Method::GET
        )
        .await,
        StatusCode::FORBIDDEN,
        "other path"
    );
    assert_eq!(
        status(get_url.clone(), reqwest::Method::PUT).await,
        StatusCode::FORBIDDEN,
        "a read URL used to write"
    );
    assert_eq!(
        status(signed.url.clone(), reqwest::Method::GET).await,
        StatusCode::FORBIDDEN,
        "a write URL used to read"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        status(get_url, reqwest::Method::GET).await,
        StatusCode::FORBIDDEN,
        "expired"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_signed_put_reaches_the_emulator() {
    let python = python_env("gcs-emulator", &["gcp-storage-emulator"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(python.parent().unwrap().join("gcp-storage-emulator"));
    // The emulator keeps its state in `.cloudstorage` under its working directory.
    cmd.current_dir(dir.path());
    cmd.args([
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--default-bucket",
        "logs",
    ]);
    let _emulator = tokio::task::block_in_place(|| {
        start_server("gcs", cmd, dir.path(), &format!("{base}/storage/v1/b"))
    });
    let pem = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .unwrap()
        .stdout;
    let account = json!({
        "type": "service_account",
        "project_id": "steward-test",
        "private_key_id": "1",
        "private_key": String::from_utf8(pem).unwrap(),
        "client_email": "steward@steward-test.iam.gserviceaccount.com",
    })
    .to_string();
    let options = vec![
        ("google_service_account_key".to_string(), account),
        ("google_base_url".to_string(), base.clone()),
        ("google_allow_http".to_string(), "true".to_string()),
    ];
    let (_p, signed, _link) = round_trip(|c| {
        c.artifacts_url = Some("gs://logs/steward".into());
        c.artifacts_options = options;
    })
    .await;
    assert!(signed.url.contains("X-Goog-Signature="), "{}", signed.url);
    let listed: Value = reqwest::get(format!("{base}/storage/v1/b/logs/o"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("steward/runs/") && n.ends_with("/log.html")),
        "{names:?}"
    );
}
