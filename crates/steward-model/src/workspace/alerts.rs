//! `spec.alerts` of an SLI: up to three thresholds (`warning`, `ticket`, `page`), each an
//! operator, a threshold and how long the condition must hold (`for`).
//!
//! ```yaml
//! alerts:
//!   warning: {operator: "<", threshold: "1", for: 20m}
//!   page: {operator: "<", threshold: "0.5", for: 5m}
//! ```

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How bad an alert is, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    /// Someone should look.
    Warning,
    /// Open a ticket.
    Ticket,
    /// Wake someone up.
    Page,
}

impl AlertLevel {
    /// Every level.
    pub const ALL: [AlertLevel; 3] = [AlertLevel::Warning, AlertLevel::Ticket, AlertLevel::Page];

    /// `warning`, `ticket` or `page`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Warning => "warning",
            AlertLevel::Ticket => "ticket",
            AlertLevel::Page => "page",
        }
    }
}

impl std::str::FromStr for AlertLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AlertLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown alert level {s:?}"))
    }
}

/// The three thresholds of an SLI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliAlerts {
    /// `warning`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<AlertRule>,
    /// `ticket`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<AlertRule>,
    /// `page`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<AlertRule>,
}

impl SliAlerts {
    /// `(level, rule)` for each threshold given.
    pub fn rules(&self) -> impl Iterator<Item = (AlertLevel, &AlertRule)> {
        [
            (AlertLevel::Warning, &self.warning),
            (AlertLevel::Ticket, &self.ticket),
            (AlertLevel::Page, &self.page),
        ]
        .into_iter()
        .filter_map(|(level, rule)| rule.as_ref().map(|r| (level, r)))
    }

    /// The first rule that does not make sense, as `(level, what is wrong)`.
    pub fn check(&self) -> Result<(), (AlertLevel, String)> {
        for (level, rule) in self.rules() {
            rule.check().map_err(|why| (level, why))?;
        }
        Ok(())
    }
}

/// One threshold: the alert holds while `value <operator> threshold` has been true for `for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    pub operator: String,
    /// The number the value is compared with (written quoted or bare).
    #[serde(deserialize_with = "super::scalar_string")]
    pub threshold: String,
    /// How long the condition must hold before the alert fires (`20m`, `1h30m`, `90s`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

impl AlertRule {
    /// Whether `value` meets the condition (a malformed rule never does).
    pub fn holds(&self, value: f64) -> bool {
        let Ok(threshold) = self.threshold.trim().parse::<f64>() else {
            return false;
        };
        match self.operator.trim() {
            "<" => value < threshold,
            "<=" => value <= threshold,
            ">" => value > threshold,
            ">=" => value >= threshold,
            "==" => value == threshold,
            "!=" => value != threshold,
            _ => false,
        }
    }

    /// `for` as a duration (zero when absent).
    pub fn hold_duration(&self) -> Duration {
        self.hold
            .as_deref()
            .and_then(|h| parse_duration(h).ok())
            .unwrap_or_default()
    }

    fn check(&self) -> Result<(), String> {
        if !["<", "<=", ">", ">=", "==", "!="].contains(&self.operator.trim()) {
            return Err(format!(
                "operator {:?} is not one of <, <=, >, >=, ==, !=",
                self.operator
            ));
        }
        if self.threshold.trim().parse::<f64>().is_err() {
            return Err(format!("threshold {:?} is not a number", self.threshold));
        }
        if let Some(hold) = &self.hold {
            parse_duration(hold)?;
        }
        Ok(())
    }
}

/// Parses `90s`, `20m`, `1h30m`, `2d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{text:?} is not a duration such as 90s, 20m, 1h30m"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 90s, 20m, 1h30m"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(format!(
            "{text:?} is not a duration such as 90s, 20m, 1h30m"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compare_and_hold() {
        let rule: AlertRule =
            serde_yaml::from_str("{operator: '<', threshold: 1, for: 1h30m}").unwrap();
        assert!(rule.holds(0.5));
        assert!(!rule.holds(1.0));
        assert_eq!(rule.hold_duration(), Duration::from_secs(5400));
        let ge: AlertRule = serde_yaml::from_str("{operator: '>=', threshold: '0.9'}").unwrap();
        assert!(ge.holds(0.9) && !ge.holds(0.89));
        assert_eq!(ge.hold_duration(), Duration::ZERO);
    }

    #[test]
    fn malformed_rules_are_named() {
        let alerts: SliAlerts =
            serde_yaml::from_str("warning: {operator: '~', threshold: 1}\n").unwrap();
        assert_eq!(alerts.check().unwrap_err().0, AlertLevel::Warning);
        let alerts: SliAlerts =
            serde_yaml::from_str("page: {operator: '<', threshold: low}\n").unwrap();
        assert!(alerts.check().unwrap_err().1.contains("\"low\""));
        let alerts: SliAlerts =
            serde_yaml::from_str("ticket: {operator: '<', threshold: 1, for: soon}\n").unwrap();
        assert!(alerts.check().unwrap_err().1.contains("duration"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20m").unwrap(), Duration::from_secs(1200));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10x").is_err());
    }
}
