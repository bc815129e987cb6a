//! runwhen-local's workspace upload (`POST /api/v3/workspaces/{ws}/upload`), over HTTP, with
//! archives built here the way `run.py` builds them.

mod common;

use base64::Engine as _;
use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tar::{EntryType, Header};

/// One archive member.
enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    /// Name written into the header as is (a well-behaved writer refuses these).
    Raw(&'a str, EntryType, &'a [u8]),
    /// A file whose name comes in a PAX extended header, as Python writes long names.
    Pax(&'a str, &'a str),
}

/// base64 of a tar.gz of `members`.
fn archive(members: &[Member]) -> String {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let header = |name: &str, kind: EntryType, size: usize| {
        let mut header = Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        header.set_size(size as u64);
        header.set_cksum();
        header
    };
    for member in members {
        match member {
            Member::Dir(name) => builder
                .append(&header(name, EntryType::Directory, 0), &[][..])
                .unwrap(),
            Member::File(name, text) => builder
                .append(
                    &header(name, EntryType::Regular, text.len()),
                    text.as_bytes(),
                )
                .unwrap(),
            Member::Raw(name, kind, data) => builder
                .append(&header(name, *kind, data.len()), *data)
                .unwrap(),
            Member::Pax(name, text) => {
                // A record is "<length> path=<name>\n", the length counting itself.
                let rest = format!(" path={name}\n");
                let mut length = rest.len() + 1;
                while format!("{length}{rest}").len() != length {
                    length += 1;
                }
                let record = format!("{length}{rest}");
                builder
                    .append(
                        &header("././@PaxHeader", EntryType::XHeader, record.len()),
                        record.as_bytes(),
                    )
                    .unwrap();
                builder
                    .append(
                        &header("truncated-name", EntryType::Regular, text.len()),
                        text.as_bytes(),
                    )
                    .unwrap();
            }
        }
    }
    let gz = builder.into_inner().unwrap().finish().unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz)
}

/// The body run.py sends.
fn body(output: &str, merge_mode: &str, prune: bool) -> Value {
    json!({
        "output": output,
        "mergeMode": merge_mode,
        "pruneStaleSlxs": prune,
        "pruneStaleResources": false,
        "message": "Updated workspace from map builder.",
        "finalizeAction": "mergeToMain",
    })
}

async fn upload(
    p: &TestPlatform,
    ws: &str,
    body: &Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = p
        .http
        .post(format!("{}/api/v3/workspaces/{ws}/upload", p.url))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn slx(name: &str) -> String {
    SLX.replace("demo--web", &format!("demo--{name}"))
}

fn sli_every(seconds: u32) -> String {
    SLI.replace(
        "intervalSeconds: 30",
        &format!("intervalSeconds: {seconds}"),
    )
}

async fn slx_names(p: &TestPlatform) -> Vec<String> {
    let (status, slxs) = p.get("/api/v1/workspaces/demo/slxs").await;
    assert_eq!(status, StatusCode::OK, "{slxs}");
    slxs.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

async fn an_upload_creates_the_workspace_with_its_slxs(db: TestDb) {
    let p = start(&db, |_| {}).await;
    // `tar -C <dir> .`: a leading "./" and directory members.
    let output = archive(&[
        Member::Dir("."),
        Member::Dir("./slxs"),
        Member::Dir("./slxs/web"),
        Member::File("./slxs/web/slx.yaml", SLX),
        Member::File("./slxs/web/sli.yaml", SLI),
        Member::File("./slxs/web/runbook.yaml", RUNBOOK),
        Member::File("./workspace.yaml", WORKSPACE),
    ]);
    let (status, report) = upload(&p, "demo", &body(&output, "keepuploaded", true), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["workspace"], "demo");
    assert_eq!(report["added"], json!(["web"]));
    assert_eq!(slx_names(&p).await, ["web"]);
    let (_, web) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(web["intervalSeconds"], 30);
    assert_eq!(web["files"]["runbook.yaml"], RUNBOOK);

    // The same tree under a "demo/" directory is the same tree.
    let output = archive(&[
        Member::Dir("demo"),
        Member::File("demo/workspace.yaml", WORKSPACE),
        Member::File("demo/slxs/web/slx.yaml", SLX),
        Member::File("demo/slxs/web/sli.yaml", SLI),
        Member::File("demo/slxs/web/runbook.yaml", RUNBOOK),
    ]);
    let (status, report) = upload(&p, "demo", &body(&output, "keepuploaded", true), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["unchanged"], json!(["web"]));
    assert_eq!(report["removed"], json!([]));
}

async fn keepexisting_adds_new_slxs_and_keeps_stored_ones(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let (status, _) = p.import(&web_files()).await;
    assert_eq!(status, StatusCode::OK);

    let faster = sli_every(10);
    let api = slx("api");
    let edited_workspace = format!("{WORKSPACE}# edited\n");
    let output = archive(&[
        Member::File("workspace.yaml", &edited_workspace),
        Member::File("slxs/web/slx.yaml", SLX),
        Member::File("slxs/web/sli.yaml", &faster),
        Member::File("slxs/api/slx.yaml", &api),
    ]);
    let (status, report) = upload(&p, "demo", &body(&output, "keepexisting", false), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["added"], json!(["api"]));
    assert_eq!(report["kept"], json!(["web"]));
    assert_eq!(report["updated"], json!([]));
    let (_, web) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(web["intervalSeconds"], 30, "the stored SLX stays");
    assert_eq!(web["files"]["runbook.yaml"], RUNBOOK);
    let (_, exported) = p.get("/api/v1/workspaces/demo/export").await;
    assert_eq!(
        exported["workspace.yaml"], WORKSPACE,
        "the stored workspace.yaml stays"
    );
    assert!(
        report["warnings"].to_string().contains("workspace.yaml"),
        "{report}"
    );

    // keepuploaded: the upload wins.
    let (status, report) = upload(&p, "demo", &body(&output, "keepuploaded", false), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["updated"], json!(["web"]));
    assert_eq!(report["unchanged"], json!(["api"]));
    assert_eq!(report["kept"], json!([]));
    let (_, web) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(web["intervalSeconds"], 10);
    assert!(web["files"].get("runbook.yaml").is_none(), "{web}");
    let (_, exported) = p.get("/api/v1/workspaces/demo/export").await;
    assert_eq!(exported["workspace.yaml"], edited_workspace.as_str());
}

async fn the_v1_import_takes_a_merge_mode_too(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let faster = sli_every(10);
    let (status, report) = p
        .send(
            reqwest::Method::PUT,
            "/api/v1/workspaces/demo",
            &json!({
                "files": {"workspace.yaml": WORKSPACE, "slxs/web/slx.yaml": SLX, "slxs/web/sli.yaml": faster},
                "mergeMode": "keepexisting",
                "prune": false,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["kept"], json!(["web"]));
    let (_, web) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(web["intervalSeconds"], 30);

    let (status, body) = p
        .send(
            reqwest::Method::PUT,
            "/api/v1/workspaces/demo",
            &json!({"files": {"workspace.yaml": WORKSPACE}, "mergeMode": "newest"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("mergeMode"),
        "{body}"
    );
}

async fn stale_slxs_go_only_when_pruning_is_asked_for(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let api = slx("api");
    let both = archive(&[
        Member::File("workspace.yaml", WORKSPACE),
        Member::File("slxs/web/slx.yaml", SLX),
        Member::File("slxs/api/slx.yaml", &api),
    ]);
    let (status, _) = upload(&p, "demo", &body(&both, "keepuploaded", true), None).await;
    assert_eq!(status, StatusCode::OK);
    let web_only = archive(&[
        Member::File("workspace.yaml", WORKSPACE),
        Member::File("slxs/web/slx.yaml", SLX),
    ]);

    let (_, report) = upload(&p, "demo", &body(&web_only, "keepuploaded", false), None).await;
    assert_eq!(report["removed"], json!([]));
    assert_eq!(slx_names(&p).await, ["api", "web"]);

    // Pruning works the same when stored SLXs are kept.
    let (_, report) = upload(&p, "demo", &body(&web_only, "keepexisting", true), None).await;
    assert_eq!(report["removed"], json!(["api"]));
    assert_eq!(slx_names(&p).await, ["web"]);
}

async fn the_api_token_is_required_when_configured(db: TestDb) {
    let p = start(&db, |c| c.api_token = Some("sekret".into())).await;
    let output = archive(&[Member::File("workspace.yaml", WORKSPACE)]);
    let request = body(&output, "keepuploaded", true);
    for token in [None, Some("wrong")] {
        let (status, error) = upload(&p, "demo", &request, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {error}");
        assert!(
            error["detail"].as_str().unwrap().contains("token"),
            "{error}"
        );
        assert_eq!(error["code"], "not_authenticated");
    }
    let (_, workspaces) = p.get("/api/v1/workspaces").await;
    assert!(
        workspaces["error"].is_string(),
        "still guarded: {workspaces}"
    );
    let (status, report) = upload(&p, "demo", &request, Some("sekret")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

async fn broken_uploads_are_refused_naming_what_is_wrong(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let refused = |status: StatusCode, code: &'static str, needle: &'static str| {
        move |(got, error): (StatusCode, Value)| {
            assert_eq!(got, status, "{error}");
            assert_eq!(error["code"], code, "{error}");
            let detail = error["detail"].as_str().unwrap();
            assert!(detail.contains(needle), "{needle:?} not in {detail:?}");
            assert_eq!(error["error"], detail, "Steward clients read `error`");
        }
    };

    refused(StatusCode::BAD_REQUEST, "invalid_base64", "base64")(
        upload(
            &p,
            "demo",
            &body("%%% not base64 %%%", "keepuploaded", true),
            None,
        )
        .await,
    );

    let plain_tar = {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = Header::new_ustar();
        header.set_path("workspace.yaml").unwrap();
        header.set_size(WORKSPACE.len() as u64);
        header.set_cksum();
        builder.append(&header, WORKSPACE.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(builder.into_inner().unwrap())
    };
    refused(StatusCode::BAD_REQUEST, "invalid_gzip", "uncompressed tar")(
        upload(&p, "demo", &body(&plain_tar, "keepuploaded", true), None).await,
    );

    for name in [
        "../../etc/cron.d/evil",
        "/etc/passwd",
        "slxs/web/../../../x",
    ] {
        let output = archive(&[
            Member::File("workspace.yaml", WORKSPACE),
            Member::Raw(name, EntryType::Regular, b"x"),
        ]);
        let (status, error) = upload(&p, "demo", &body(&output, "keepuploaded", true), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {error}");
        assert_eq!(error["code"], "unsafe_member");
        assert!(error["detail"].as_str().unwrap().contains(name), "{error}");
    }

    let link = archive(&[
        Member::File("workspace.yaml", WORKSPACE),
        Member::Raw("slxs/web/slx.yaml", EntryType::Symlink, b""),
    ]);
    refused(
        StatusCode::BAD_REQUEST,
        "unsupported_member",
        "slxs/web/slx.yaml",
    )(upload(&p, "demo", &body(&link, "keepuploaded", true), None).await);

    let other = archive(&[Member::File(
        "workspace.yaml",
        &WORKSPACE.replace("name: demo", "name: other"),
    )]);
    refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_workspace",
        "\"other\"",
    )(upload(&p, "demo", &body(&other, "keepuploaded", true), None).await);
    let no_workspace = archive(&[Member::File("slxs/web/slx.yaml", SLX)]);
    refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_workspace",
        "workspace.yaml",
    )(upload(&p, "demo", &body(&no_workspace, "keepuploaded", true), None).await);

    refused(StatusCode::BAD_REQUEST, "invalid_request", "output")(
        upload(&p, "demo", &json!({"mergeMode": "keepuploaded"}), None).await,
    );
    let fine = archive(&[Member::File("workspace.yaml", WORKSPACE)]);
    refused(StatusCode::BAD_REQUEST, "invalid_request", "keepexisting")(
        upload(&p, "demo", &body(&fine, "sometimes", true), None).await,
    );
    let form = p
        .http
        .post(format!("{}/api/v3/workspaces/demo/upload", p.url))
        .header("content-type", "text/plain")
        .body(body(&fine, "keepuploaded", true).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing of the above was stored.
    let (_, workspaces) = p.get("/api/v1/workspaces").await;
    assert_eq!(workspaces, json!([]));
}

/// Byte for byte what run.py posts: `json.dumps` of its dict, its three headers, and a tar
/// made with `tarfile.add(".")` from the workspace directory (PAX names for long paths).
async fn the_request_run_py_builds_is_accepted(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let long = "demo--a-very-long-qualified-slx-name-from-a-cluster-a-namespace-and-a-deployment-health-74582bf1";
    let long_slx = SLX.replace("demo--web", long);
    let long_path = format!("./slxs/{long}/slx.yaml");
    assert!(long_path.len() > 100, "needs a PAX name");
    let output = archive(&[
        Member::Dir("."),
        Member::File("./workspace.yaml", WORKSPACE),
        Member::Dir("./slxs"),
        Member::Dir("./slxs/web"),
        Member::File("./slxs/web/slx.yaml", SLX),
        Member::File("./slxs/web/sli.yaml", SLI),
        Member::Pax(&long_path, &long_slx),
    ]);
    let text = format!(
        "{{\"output\": \"{output}\", \"mergeMode\": \"keepuploaded\", \"pruneStaleSlxs\": true, \
         \"pruneStaleResources\": true, \"message\": \"Updated workspace from map builder.\", \
         \"finalizeAction\": \"mergeToMain\"}}"
    );
    let response = p
        .http
        .post(format!("{}/api/v3/workspaces/demo/upload", p.url))
        .header("Authorization", "Bearer upload-token-from-uploadInfo")
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["added"], json!([long, "web"]), "{report}");
    assert_eq!(slx_names(&p).await, [long, "web"]);
}

async fn uploads_are_limited_by_the_import_limit(db: TestDb) {
    let p = start(&db, |_| {}).await;
    // Well over the 2 MiB other bodies may have: text that does not compress.
    let mut seed = 0x2545_f491_u32;
    let noise: String = (0..4 * 1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            char::from(b'!' + (seed % 90) as u8)
        })
        .collect();
    let output = archive(&[
        Member::File("workspace.yaml", WORKSPACE),
        Member::File("slxs/web/slx.yaml", SLX),
        Member::File("slxs/web/SKILL.md", &noise),
    ]);
    assert!(output.len() > 4 * 1024 * 1024);
    let (status, report) = upload(&p, "demo", &body(&output, "keepuploaded", true), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, web) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(
        web["files"]["SKILL.md"].as_str().map(str::len),
        Some(noise.len())
    );

    // 257 MiB of zeros in one member, a few hundred KiB compressed: a gzip member per MiB, so
    // the test compresses one MiB once.
    let mut header = Header::new_ustar();
    header.set_path("slxs/web/big").unwrap();
    header.set_size(257 * 1024 * 1024);
    header.set_cksum();
    let gzip = |bytes: &[u8]| {
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let mut gz = gzip(header.as_bytes());
    let zeros = gzip(&vec![0u8; 1024 * 1024]);
    for _ in 0..257 {
        gz.extend_from_slice(&zeros);
    }
    let output = base64::engine::general_purpose::STANDARD.encode(&gz);
    let (status, error) = upload(&p, "demo", &body(&output, "keepuploaded", true), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["code"], "too_large");
    assert!(
        error["detail"].as_str().unwrap().contains("256 MiB"),
        "{error}"
    );

    // A body announced beyond what base64 of 256 MiB needs is refused before it is sent:
    // the body below never yields a byte.
    let never = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    let response = p
        .http
        .post(format!("{}/api/v3/workspaces/demo/upload", p.url))
        .header("content-type", "application/json")
        .header("content-length", (400u64 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(never))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "too_large", "{error}");
}

steward_testkit::on_both_databases!(
    an_upload_creates_the_workspace_with_its_slxs,
    keepexisting_adds_new_slxs_and_keeps_stored_ones,
    the_v1_import_takes_a_merge_mode_too,
    stale_slxs_go_only_when_pruning_is_asked_for,
    the_api_token_is_required_when_configured,
    broken_uploads_are_refused_naming_what_is_wrong,
    the_request_run_py_builds_is_accepted,
    uploads_are_limited_by_the_import_limit,
);
