//! The pinned versions of deploy/images.yaml, the Dockerfiles under deploy/docker, the Helm
//! charts' defaults and the Python packages the runtime installs agree. (The images cannot be
//! built here: there is no Docker engine; this checks what can be checked without one.)

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    steward_testkit::workspace_root()
}

fn chart(name: &str) -> PathBuf {
    root().join("deploy/helm").join(name)
}

fn images_yaml() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/images.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `ARG NAME=default` lines and the images of `FROM` lines.
fn dockerfile(path: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut args = BTreeMap::new();
    let mut from = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ARG ")
            && let Some((name, value)) = rest.split_once('=')
        {
            args.insert(name.to_string(), value.to_string());
        }
        if let Some(rest) = line.strip_prefix("FROM ") {
            from.push(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    (args, from)
}

#[test]
fn pinned_versions_agree_everywhere() {
    let images = images_yaml();
    let version = env!("CARGO_PKG_VERSION");
    let registry = images["registry"].as_str().unwrap();
    for name in ["steward", "runtime"] {
        assert_eq!(images["images"][name]["tag"], version, "{name} tag");
        assert_eq!(images["images"][name]["contents"]["steward"], version);
    }
    // Chart defaults.
    for (chart_name, names) in [
        ("steward-runner", &["steward", "runtime"][..]),
        ("steward-platform", &["steward"][..]),
    ] {
        let dir = chart(chart_name);
        let meta: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap())
                .unwrap();
        assert_eq!(meta["appVersion"], version, "{chart_name} appVersion");
        let values: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap())
                .unwrap();
        for name in names {
            let image = &values["images"][name];
            assert_eq!(image["registry"], registry, "{chart_name} {name}");
            assert_eq!(image["repository"], images["images"][name]["repository"]);
            assert_eq!(image["tag"], images["images"][name]["tag"]);
        }
    }
    // Dockerfiles: every base comes from a pinned ARG, and the ARGs are the listed versions.
    let docker = root().join("deploy/docker");
    let (args, from) = dockerfile(&docker.join("steward.Dockerfile"));
    assert_eq!(from, ["${RUST_IMAGE}", "${DEBIAN_IMAGE}"]);
    assert_eq!(args["RUST_IMAGE"], images["bases"]["rust"]);
    assert_eq!(args["DEBIAN_IMAGE"], images["bases"]["debian"]);
    let rust = format!("rust:{}", env!("CARGO_PKG_RUST_VERSION"));
    assert!(
        args["RUST_IMAGE"].contains(&rust),
        "the builder image is not Rust {rust}"
    );

    let runtime = &images["images"]["runtime"]["contents"];
    let (args, from) = dockerfile(&docker.join("runtime.Dockerfile"));
    assert_eq!(from, ["${STEWARD_IMAGE}", "${PYTHON_IMAGE}"]);
    assert_eq!(
        args["STEWARD_IMAGE"],
        format!("{registry}/steward:{version}")
    );
    assert_eq!(args["PYTHON_IMAGE"], images["bases"]["python"]);
    let python = runtime["python"].as_str().unwrap();
    assert!(args["PYTHON_IMAGE"].contains(&format!("python:{python}-")));
    assert_eq!(args["KUBECTL_VERSION"], runtime["kubectl"]);
    let arg_of = |package: &str| format!("{}_VERSION", package.replace('-', "_").to_uppercase());
    for pin in steward_runtime::python::PINS {
        let (package, pinned) = pin.split_once("==").unwrap();
        assert_eq!(runtime[package], pinned, "images.yaml {package}");
        assert_eq!(
            args[&arg_of(package)],
            pinned,
            "runtime.Dockerfile {package}"
        );
    }
    for tool in ["kubectl", "jq", "curl", "dig", "git"] {
        assert!(
            runtime.get(tool).is_some(),
            "images.yaml lists no {tool} in the runtime image"
        );
    }
}
