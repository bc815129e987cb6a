//! The two databases the store runs on, and what differs between them.
//!
//! Queries go through sqlx's `Any` driver, so each is written once. The SQL is the common
//! dialect of SQLite and PostgreSQL: numbered placeholders (`$1`), `ON CONFLICT`, `RETURNING`,
//! `CASE` instead of SQLite's two-argument `MIN`/`MAX`, integers instead of booleans. The few
//! places that must differ ask [`Backend`].

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::error::BoxDynError;
use sqlx::{Any, AnyPool, Arguments, AssertSqlSafe, Encode, Executor, Type};
use std::time::Duration;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file (or memory), one writer: the embedded default.
    Sqlite,
    /// A server shared by several platform replicas.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(sqlx::Error::Configuration(
                format!(
                    "database URL {:?} is neither sqlite://PATH nor postgres://USER@HOST/DB",
                    redact(url)
                )
                .into(),
            ))
        }
    }

    /// `FOR UPDATE` where replicas may change the same row at once (PostgreSQL).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Makes imports and deletions of workspaces wait for each other: each recomputes the
    /// desired state from every SLX, which must include what the other wrote. SQLite's single
    /// writer already does this.
    pub(crate) async fn serialize_imports(
        self,
        tx: &mut sqlx::Transaction<'_, Any>,
    ) -> Result<(), sqlx::Error> {
        if self == Backend::Postgres {
            // The lock function returns `void`, which the Any driver cannot read: select around it.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7419005)) AS locked")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// `FOR UPDATE SKIP LOCKED` where replicas compete for rows; nothing on SQLite, whose
    /// single writer already serialises them.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A database URL fit for logs and errors: the password replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// The pools of an opened database: SQLite writes through one connection (so a read
/// transaction never has to become a write one, which fails instead of waiting) and reads
/// through a read-only pool; PostgreSQL uses one pool for both.
pub(crate) struct Pools {
    pub(crate) read: AnyPool,
    pub(crate) write: AnyPool,
}

/// Connects and applies the migrations of `backend`.
pub(crate) async fn connect(url: &str, backend: Backend) -> Result<Pools, sqlx::Error> {
    sqlx::any::install_default_drivers();
    match backend {
        Backend::Sqlite => {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let write = sqlite_pool(1, WRITER_PRAGMAS)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&sqlite_url(url, if memory { None } else { Some("rwc") }))
                .await?;
            sqlx::migrate!("migrations/sqlite")
                .run(&write)
                .await
                .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
            // An in-memory database exists once per connection: the writer serves reads too.
            let read = if memory {
                write.clone()
            } else {
                sqlite_pool(8, "")
                    .connect(&sqlite_url(url, Some("ro")))
                    .await?
            };
            Ok(Pools { read, write })
        }
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(32)
                // A database that cannot be reached answers 503 quickly rather than holding
                // every request for the default half minute.
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            // The migrator takes an advisory lock, so replicas starting together apply them once.
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
            Ok(Pools {
                read: pool.clone(),
                write: pool,
            })
        }
    }
}

/// The writer keeps a large page cache (the newest pages of every SLI series stay in it) and
/// checkpoints the WAL less often, so a page written many times is copied back once. Readers
/// keep SQLite's small default: a reader drops its whole cache whenever the database changed,
/// which is after nearly every write.
const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8000;";

fn sqlite_pool(max: u32, extra_pragmas: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; NORMAL syncs at checkpoints only,
                // which WAL keeps crash-safe.
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; {extra_pragmas}"
                )))
                .await?;
                Ok(())
            })
        })
}

/// `url` with its `mode` parameter set (`rwc` creates the file, `ro` opens it read-only).
fn sqlite_url(url: &str, mode: Option<&str>) -> String {
    let Some(mode) = mode else {
        return url.to_string();
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("mode="))
        .collect();
    let mode = format!("mode={mode}");
    params.push(&mode);
    format!("{path}?{}", params.join("&"))
}

/// SQL text built in pieces, with placeholders in the form each database reads best:
/// PostgreSQL needs `$n`; SQLite reads those too, but looks each numbered name up by a linear
/// scan, which makes a statement with thousands of them (a batch insert) quadratic, so it gets
/// plain `?`. (sqlx's `QueryBuilder` writes `?` for the `Any` driver whatever the database.)
pub(crate) struct Sql {
    backend: Backend,
    text: String,
    args: AnyArguments,
    error: Option<BoxDynError>,
}

impl Sql {
    /// Starts with `text`, which holds no placeholders.
    pub(crate) fn new(backend: Backend, text: impl Into<String>) -> Self {
        Sql {
            backend,
            text: text.into(),
            args: AnyArguments::default(),
            error: None,
        }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn push_bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if let Err(error) = self.args.add(value) {
            self.error.get_or_insert(error);
        }
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    /// Appends `$a, $b, ...` bound to `values`.
    pub(crate) fn push_list<'t, T: Encode<'t, Any> + Type<Any>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// Appends `VALUES (...), (...)`: `row` binds the columns of one item.
    pub(crate) fn push_values<I>(
        &mut self,
        items: impl IntoIterator<Item = I>,
        mut row: impl FnMut(&mut Row<'_>, I),
    ) -> &mut Self {
        self.text.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push('(');
            row(
                &mut Row {
                    sql: self,
                    first: true,
                },
                item,
            );
            self.text.push(')');
        }
        self
    }

    /// The query, ready to execute, or the first value that could not be encoded.
    pub(crate) fn build(
        self,
    ) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, sqlx::Error> {
        match self.error {
            Some(error) => Err(sqlx::Error::Encode(error)),
            None => Ok(sqlx::query_with(AssertSqlSafe(self.text), self.args)),
        }
    }
}

/// The columns of one row of [`Sql::push_values`].
pub(crate) struct Row<'s> {
    sql: &'s mut Sql,
    first: bool,
}

impl Row<'_> {
    /// Binds the next column.
    pub(crate) fn bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if !self.first {
            self.sql.text.push_str(", ");
        }
        self.first = false;
        self.sql.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend_across_pieces() {
        let mut sql = Sql::new(Backend::Postgres, "UPDATE t SET a = ");
        sql.push_bind(1i64).push(" WHERE b IN (");
        sql.push_list(["x", "y"]).push(")");
        assert_eq!(sql.text, "UPDATE t SET a = $1 WHERE b IN ($2, $3)");
        let mut rows = Sql::new(Backend::Postgres, "INSERT INTO t (a, b) ");
        rows.push_values([(1i64, "p"), (2, "q")], |row, (a, b)| {
            row.bind(a).bind(b);
        });
        assert_eq!(rows.text, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        assert_eq!(rows.args.len(), 4);
        let mut rows = Sql::new(Backend::Sqlite, "INSERT INTO t (a, b) ");
        rows.push_values([(1i64, "p"), (2, "q")], |row, (a, b)| {
            row.bind(a).bind(b);
        });
        assert_eq!(rows.text, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }

    #[test]
    fn sqlite_urls_get_their_mode() {
        assert_eq!(
            sqlite_url("sqlite:///d/s.db", Some("ro")),
            "sqlite:///d/s.db?mode=ro"
        );
        assert_eq!(
            sqlite_url("sqlite:///d/s.db?mode=rwc&cache=shared", Some("ro")),
            "sqlite:///d/s.db?cache=shared&mode=ro"
        );
        assert_eq!(sqlite_url("sqlite::memory:", None), "sqlite::memory:");
    }

    #[test]
    fn urls_name_their_backend_and_hide_passwords() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        let error = Backend::of_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("mysql://u:***@h/db"), "{error}");
        assert!(!error.contains("secret"));
    }
}
