//! Names derived from workspace objects.

/// `RW_SLI_METRIC_NAME` for an SLX: `<slx>__sli` with characters OpenTelemetry refuses in an
/// instrument name replaced by `_`, and a letter first (instrument names must start with one).
///
/// ```
/// assert_eq!(steward_model::names::sli_metric_name("platform-http"), "platform_http__sli");
/// assert_eq!(steward_model::names::sli_metric_name("9lives"), "slx_9lives__sli");
/// ```
pub fn sli_metric_name(slx: &str) -> String {
    let mut name: String = slx
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "slx_");
    }
    name.push_str("__sli");
    name
}

/// The name a robot file is known by in `RW_RFNS` (its file name).
pub fn robot_file_name(path_to_robot: &str) -> &str {
    path_to_robot.rsplit('/').next().unwrap_or(path_to_robot)
}
