//! Undefined values that end up as text, as runwhen-local treats them since its issue #456:
//! printed as [`MISSING_PLACEHOLDER`] instead of an empty string (which made invalid YAML out of
//! `key: {{ custom.missing }}`), and reported.
//!
//! The engine's formatter and the string filters call [`as_text`] for an undefined value. The
//! calls of one render are counted in a per-thread log that [`Session`] opens and closes. To name
//! the variable, the renderer renders the template again with the log told to fail at the n-th
//! use: the error minijinja then raises carries the expression (`custom.x`) and its line, which
//! the engine already knows how to work out. Only templates that printed something undefined
//! pay for that second pass.

use minijinja::value::Value;
use minijinja::{Error, Output, State};
use std::borrow::Cow;
use std::cell::RefCell;

/// What an undefined value renders as (runwhen-local's text, kept for compatibility: tools
/// search generated workspaces for it).
pub const MISSING_PLACEHOLDER: &str = "missing_workspaceInfo_custom_variable";

#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Undefined values turned into text so far.
    pub uses: usize,
    /// In a diagnostic pass: the use to fail at.
    pub fail_at: Option<usize>,
    /// Includes Steward does not provide, by name, in the order they were included.
    pub unsupported_includes: Vec<String>,
}

thread_local! {
    static LOG: RefCell<Option<Log>> = const { RefCell::new(None) };
}

/// The log of one render on this thread. Dropping it (also on unwind) restores the log of an
/// enclosing render, if any.
pub(crate) struct Session {
    outer: Option<Log>,
    finished: bool,
}

impl Session {
    pub fn start(fail_at: Option<usize>) -> Session {
        let log = Log {
            fail_at,
            ..Log::default()
        };
        let outer = LOG.with(|l| l.borrow_mut().replace(log));
        Session {
            outer,
            finished: false,
        }
    }

    pub fn finish(mut self) -> Log {
        self.finished = true;
        let outer = self.outer.take();
        LOG.with(|l| std::mem::replace(&mut *l.borrow_mut(), outer))
            .unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.finished {
            let outer = self.outer.take();
            LOG.with(|l| *l.borrow_mut() = outer);
        }
    }
}

/// The text an undefined value stands for; in a diagnostic pass, the error that names it.
fn undefined_text(value: &Value) -> Result<&'static str, Error> {
    let fail = LOG.with(|l| {
        let mut log = l.borrow_mut();
        let log = log.as_mut()?;
        log.uses += 1;
        (log.fail_at == Some(log.uses)).then_some(())
    });
    if fail.is_some() {
        // Any use of an undefined value as a container raises an error that minijinja
        // completes with the expression the value came from.
        value.get_attr("name")?;
    }
    Ok(MISSING_PLACEHOLDER)
}

/// A value as Python's `str()` would give it, with undefined as the placeholder.
pub(crate) fn as_text(value: &Value) -> Result<Cow<'_, str>, Error> {
    if value.is_undefined() {
        return undefined_text(value).map(Cow::Borrowed);
    }
    Ok(match value.as_str() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(value.to_string()),
    })
}

/// The engine's formatter: the default one, except for undefined values.
pub(crate) fn format(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        out.write_str(undefined_text(value)?)?;
        return Ok(());
    }
    minijinja::escape_formatter(out, state, value)
}

/// Records that a template included one of upstream's includes Steward lacks.
pub(crate) fn note_unsupported_include(name: String) {
    LOG.with(|l| {
        if let Some(log) = l.borrow_mut().as_mut() {
            log.unsupported_includes.push(name);
        }
    });
}

/// `| string`, `| lower`, `| upper`, `| trim`, `| replace`: Jinja2 turns their input into
/// text with `str()`, so an undefined input becomes the placeholder there too.
pub(crate) mod filters {
    use super::as_text;
    use minijinja::Error;
    use minijinja::value::Value;

    pub fn string(value: Value) -> Result<Value, Error> {
        if value.as_str().is_some() {
            return Ok(value);
        }
        Ok(Value::from(as_text(&value)?.into_owned()))
    }

    pub fn lower(value: Value) -> Result<String, Error> {
        Ok(as_text(&value)?.to_lowercase())
    }

    pub fn upper(value: Value) -> Result<String, Error> {
        Ok(as_text(&value)?.to_uppercase())
    }

    pub fn trim(value: Value, chars: Option<String>) -> Result<String, Error> {
        let text = as_text(&value)?;
        Ok(match chars {
            Some(chars) => text.trim_matches(|c| chars.contains(c)).to_string(),
            None => text.trim().to_string(),
        })
    }

    pub fn replace(
        value: Value,
        old: Value,
        new: Value,
        count: Option<usize>,
    ) -> Result<String, Error> {
        let text = as_text(&value)?;
        let (old, new) = (as_text(&old)?, as_text(&new)?);
        Ok(match count {
            Some(n) => text.replacen(old.as_ref(), new.as_ref(), n),
            None => text.replace(old.as_ref(), new.as_ref()),
        })
    }
}
