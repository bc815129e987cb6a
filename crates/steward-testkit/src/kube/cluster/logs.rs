//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: what a container the kubelet started wrote
//! to stdout and stderr (one stream, as `kubectl logs` shows it), with `container`,
//! `previous`, `tailLines`, `limitBytes` and `follow` (streamed until the container ends).

use super::super::objects::text;
use super::super::routes::Shared;
use super::super::status::ApiError;
use super::ContainerView;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

fn tail(text: &[u8], lines: usize) -> &[u8] {
    let mut seen = 0;
    let trimmed = text.strip_suffix(b"\n").unwrap_or(text);
    for (i, b) in trimmed.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return &text[i + 1..];
            }
        }
    }
    if lines == 0 { &[] } else { text }
}

fn waiting_reason(pod: &Value, container: &str) -> String {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| s["name"] == container)
        .map(|s| text(s, "/state/waiting/reason").to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "ContainerCreating".into())
}

pub(crate) fn serve(
    shared: &Shared,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pod = shared
        .store
        .lock()
        .expect("store lock")
        .get("", "pods", namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| text(c, "/name"))
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c.as_str()) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if names.len() == 1 => names[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let Some(node) = &shared.node else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" has no logs: this test API server runs no \
             kubelet (start it with KubeApiServerBuilder::node)"
        )));
    };
    let view: Option<ContainerView> =
        node.container(&(namespace.to_string(), name.to_string(), container.clone()));
    let previous = query.get("previous").is_some_and(|p| p == "true");
    let path = match (view, previous) {
        (Some(v), false) => v.log.clone(),
        (
            Some(ContainerView {
                previous: Some(p), ..
            }),
            true,
        ) => p,
        (_, true) => {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        (None, false) => {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {}",
                waiting_reason(&pod, &container)
            )));
        }
    };
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    if let Some(lines) = query.get("tailLines").and_then(|l| l.parse::<usize>().ok()) {
        bytes = tail(&bytes, lines).to_vec();
    }
    if let Some(limit) = query
        .get("limitBytes")
        .and_then(|l| l.parse::<usize>().ok())
    {
        bytes.truncate(limit);
    }
    let follow = query.get("follow").is_some_and(|f| f == "true") && !previous;
    let text_plain = [(header::CONTENT_TYPE, "text/plain")];
    if !follow {
        return Ok((StatusCode::OK, text_plain, bytes).into_response());
    }
    let view = node
        .container(&(namespace.to_string(), name.to_string(), container))
        .expect("checked above");
    let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
    let first: Result<Bytes, Infallible> = Ok(Bytes::from(bytes));
    let rest = futures::stream::unfold((view, offset, false), |(view, offset, done)| async move {
        if done {
            return None;
        }
        loop {
            let ended = view.exit.lock().expect("exit lock").is_some();
            let mut chunk = Vec::new();
            if let Ok(mut file) = std::fs::File::open(&view.log) {
                let _ = file.seek(SeekFrom::Start(offset));
                let _ = file.read_to_end(&mut chunk);
            }
            if !chunk.is_empty() || ended {
                let next = offset + chunk.len() as u64;
                let chunk: Result<Bytes, Infallible> = Ok(Bytes::from(chunk));
                return Some((chunk, (view, next, ended)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stream = futures::StreamExt::chain(futures::stream::once(async { first }), rest);
    Ok((StatusCode::OK, text_plain, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\n", 5), b"a\n");
        assert_eq!(tail(b"a\n", 0), b"");
    }
}
