//! A SQLite connection through the C API, for the one job that moves every row: the hourly pass
//! (`store::pass`). sqlx hands rows over one at a time through a worker thread and a channel, which
//! costs several times what SQLite spends reading them; here a statement is stepped in place and its
//! columns read directly, and writes bind values without an intermediate encoding.
//!
//! It opens the pool's file with the pool's connection settings. A [`Db`] is used by one thread at a
//! time (`Send`, not `Sync`) and keeps its prepared statements for reuse. Errors become the same
//! `StoreError`s as the pool's: the extended result code is the error's code, so busy, locked,
//! read-only, I/O and full are `Unavailable`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

use super::StoreError;
use crate::config::SqliteSync;

/// How much of the file a connection maps (SQLite caps it at 2 GiB by default).
const MMAP_SIZE: i64 = 1 << 30;

/// An open database connection and its prepared statements.
pub(super) struct Db {
    handle: NonNull<ffi::sqlite3>,
    /// By the address and length of their text: statements are `&'static str` constants.
    statements: HashMap<(usize, usize), Stmt>,
}

// SAFETY: the connection is opened with SQLITE_OPEN_NOMUTEX, which SQLite allows to move between
// threads as long as one thread uses it at a time: `Db` is not `Sync`, its statements are only
// reached through `&mut Db`, and they never leave it.
unsafe impl Send for Db {}

impl Db {
    /// Opens `path` read-write (never creates it: the pool did) with the pool's settings.
    pub(super) fn open(path: &Path, sync: SqliteSync) -> Result<Db, StoreError> {
        let name = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| failure(ffi::SQLITE_CANTOPEN, "database path holds a NUL byte".into()))?;
        let mut handle = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: `name` is a valid C string; `handle` receives the connection (or NULL).
        let rc = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut handle, flags, ptr::null()) };
        let Some(handle) = NonNull::new(handle) else {
            return Err(failure(rc, "out of memory opening the database".into()));
        };
        let mut db = Db { handle, statements: HashMap::new() };
        if rc != ffi::SQLITE_OK {
            return Err(error(handle, rc));
        }
        // SAFETY: the handle is open; extended codes make errors comparable with sqlx's.
        unsafe { ffi::sqlite3_extended_result_codes(handle.as_ptr(), 1) };
        let synchronous = match sync {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        // Reads through a memory map, not `pread` into the page cache: the pass reads each page once,
        // and the copy was most of the cost of reading the `(site_id, created_at)` index.
        db.exec(&format!(
            "PRAGMA busy_timeout = 5000; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 16384; PRAGMA mmap_size = {MMAP_SIZE}"
        ))?;
        Ok(db)
    }

    /// Runs statements that return no rows.
    pub(super) fn exec(&mut self, sql: &str) -> Result<(), StoreError> {
        let sql = CString::new(sql).map_err(|_| failure(ffi::SQLITE_MISUSE, "statement holds a NUL byte".into()))?;
        // SAFETY: the handle is open and `sql` a valid C string; no callback.
        let rc =
            unsafe { ffi::sqlite3_exec(self.handle.as_ptr(), sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut()) };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error(self.handle, rc)) }
    }

    /// The prepared statement for `sql` (prepared on first use, then reused), reset and ready to
    /// bind. `$N` parameters are bound by their number N.
    pub(super) fn stmt(&mut self, sql: &'static str) -> Result<&mut Stmt, StoreError> {
        let key = (sql.as_ptr() as usize, sql.len());
        if !self.statements.contains_key(&key) {
            let stmt = Stmt::prepare(self.handle, sql)?;
            self.statements.insert(key, stmt);
        }
        let stmt = self.statements.get_mut(&key).expect("inserted above");
        stmt.reset();
        Ok(stmt)
    }

    /// Rows the last INSERT, UPDATE or DELETE changed.
    pub(super) fn changes(&mut self) -> i64 {
        // SAFETY: the handle is open.
        unsafe { ffi::sqlite3_changes64(self.handle.as_ptr()) }
    }

    /// `PRAGMA data_version`: changes whenever another connection commits to the database.
    pub(super) fn data_version(&mut self) -> Result<i64, StoreError> {
        Ok(self.stmt("PRAGMA data_version")?.one_int()?.unwrap_or(0))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.statements.clear();
        // SAFETY: every statement of this connection was finalized just above.
        unsafe { ffi::sqlite3_close(self.handle.as_ptr()) };
    }
}

/// A prepared statement of a [`Db`]. Bind, step until it returns `false`, read columns of the
/// current row.
pub(super) struct Stmt {
    handle: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    /// SQLite's index of parameter `$n` at `[n]` (0: no such parameter).
    index_of: Vec<c_int>,
}

/// A value to bind.
#[derive(Clone, Copy, Debug)]
pub(super) enum Value<'a> {
    Int(i64),
    Text(&'a str),
}

impl Stmt {
    fn prepare(handle: NonNull<ffi::sqlite3>, sql: &str) -> Result<Stmt, StoreError> {
        let mut stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "statement too long".into()))?;
        // SAFETY: `sql` is valid for `len` bytes; `stmt` receives the statement (or NULL).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                handle.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(handle, rc));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| failure(ffi::SQLITE_MISUSE, "empty statement".into()))?;
        let mut prepared = Stmt { handle, stmt, index_of: Vec::new() };
        // SAFETY: `stmt` is a live statement of this connection.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        for index in 1..=count {
            // SAFETY: as above; a NULL name is an anonymous parameter, numbered by position.
            let name = unsafe { ffi::sqlite3_bind_parameter_name(stmt.as_ptr(), index) };
            let number = if name.is_null() {
                index
            } else {
                // SAFETY: SQLite returns a NUL-terminated name that lives as long as `stmt`.
                let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                name.trim_start_matches(['$', '?', ':', '@']).parse().unwrap_or(index)
            };
            let slot = usize::try_from(number).unwrap_or(0);
            if prepared.index_of.len() <= slot {
                prepared.index_of.resize(slot + 1, 0);
            }
            prepared.index_of[slot] = index;
        }
        Ok(prepared)
    }

    fn index(&self, number: c_int) -> c_int {
        usize::try_from(number).ok().and_then(|n| self.index_of.get(n)).copied().unwrap_or(0)
    }

    fn check(&self, rc: c_int) -> Result<(), StoreError> {
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(error(self.handle, rc)) }
    }

    /// Binds `$number` to an integer.
    pub(super) fn bind_int(&mut self, number: c_int, value: i64) -> Result<&mut Stmt, StoreError> {
        let index = self.index(number);
        // SAFETY: a live statement; an unknown index is reported as SQLITE_RANGE.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(rc)?;
        Ok(self)
    }

    /// Binds `$number` to a text (SQLite copies it).
    pub(super) fn bind_text(&mut self, number: c_int, value: &str) -> Result<&mut Stmt, StoreError> {
        let index = self.index(number);
        let len = c_int::try_from(value.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "text too long".into()))?;
        // SAFETY: `value` is valid for `len` bytes; SQLITE_TRANSIENT makes SQLite copy it.
        let rc = unsafe {
            ffi::sqlite3_bind_text(self.stmt.as_ptr(), index, value.as_ptr().cast(), len, ffi::SQLITE_TRANSIENT())
        };
        self.check(rc)?;
        Ok(self)
    }

    /// Runs the statement to its next row: `true` with a row to read, `false` when done.
    pub(super) fn step(&mut self) -> Result<bool, StoreError> {
        // SAFETY: a live statement.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => {
                let err = error(self.handle, rc);
                self.reset();
                Err(err)
            }
        }
    }

    /// Binds `values` to `$1`, `$2`, … (texts without a copy: they outlive the call), runs the
    /// statement to its end and resets it, bindings cleared.
    pub(super) fn run_values(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        let mut bound = Ok(());
        for (at, value) in values.iter().enumerate() {
            let index = self.index(c_int::try_from(at + 1).unwrap_or(0));
            // SAFETY: a live statement; a text is read only by the step below, while `values`
            // (which it borrows from) is alive, and unbound by `sqlite3_clear_bindings` after it.
            let rc = unsafe {
                match *value {
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, n),
                    Value::Text(text) => ffi::sqlite3_bind_text(
                        self.stmt.as_ptr(),
                        index,
                        text.as_ptr().cast(),
                        c_int::try_from(text.len()).unwrap_or(c_int::MAX),
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            bound = self.check(rc);
            if bound.is_err() {
                break;
            }
        }
        let done = bound.and_then(|()| self.run());
        // SAFETY: a live statement; drops the borrowed texts' pointers.
        unsafe { ffi::sqlite3_clear_bindings(self.stmt.as_ptr()) };
        done
    }

    /// Steps a statement that returns no rows to its end, then resets it.
    pub(super) fn run(&mut self) -> Result<(), StoreError> {
        while self.step()? {}
        self.reset();
        Ok(())
    }

    /// The first column of the first row (`None` without a row or for NULL), then resets, so no
    /// read stays open.
    pub(super) fn one_int(&mut self) -> Result<Option<i64>, StoreError> {
        let value = if self.step()? { self.opt_int(0) } else { None };
        self.reset();
        Ok(value)
    }

    /// Makes the statement ready to run again (bindings are kept until rebound).
    pub(super) fn reset(&mut self) {
        // SAFETY: a live statement; the error of a failed last step was already reported.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
    }

    /// Column `i` of the current row as an integer (NULL is 0).
    pub(super) fn int(&self, i: c_int) -> i64 {
        // SAFETY: a live statement positioned on a row.
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), i) }
    }

    /// Column `i` as an integer, `None` for NULL.
    pub(super) fn opt_int(&self, i: c_int) -> Option<i64> {
        // SAFETY: as above.
        let null = unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), i) } == ffi::SQLITE_NULL;
        if null { None } else { Some(self.int(i)) }
    }

    /// Column `i` as text, valid until the statement moves (NULL is "").
    pub(super) fn text(&self, i: c_int) -> Cow<'_, str> {
        // SAFETY: as above; `_text` before `_bytes`, as SQLite documents; the bytes live until the
        // statement steps or resets, which needs `&mut self`.
        let bytes = unsafe {
            let data = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            if data.is_null() {
                return Cow::Borrowed("");
            }
            let len = usize::try_from(ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i)).unwrap_or(0);
            std::slice::from_raw_parts(data, len)
        };
        String::from_utf8_lossy(bytes)
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: a live statement, finalized once, before its connection closes (see `Db::drop`).
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// `head`, then `rows` groups of `columns` numbered parameters (`($1, $2), ($3, $4)`), then `tail`:
/// a statement that writes many rows per step.
pub(super) fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let groups: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns).map(|c| format!("${}", row * columns + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!("{head}{}{tail}", groups.join(", "))
}

/// Turns off SQLite's memory statistics, process-wide: with them on, every allocation takes one
/// global mutex, which the pass's reading and writing threads would fight over. Works only before
/// the first connection opens (later it changes nothing); nothing here reads the statistics.
pub(super) fn disable_memory_statistics() {
    // SAFETY: `sqlite3_config` is safe to call before initialization and reports MISUSE after it.
    unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
}

/// The connection's last error as a `StoreError`.
fn error(handle: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: the handle is open; the message is copied before any other call on it.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(handle.as_ptr());
        let message = CStr::from_ptr(ffi::sqlite3_errmsg(handle.as_ptr())).to_string_lossy().into_owned();
        (code, message)
    };
    failure(if code == ffi::SQLITE_OK { rc } else { code }, message)
}

/// A failed call: SQLite's extended result code and message, as a `StoreError`.
fn failure(code: c_int, message: String) -> StoreError {
    StoreError::from(sqlx::Error::Database(Box::new(SqliteFailure { code, message })))
}

/// The error sqlx's own driver would report, so `StoreError::from` classifies it the same way.
#[derive(Debug)]
struct SqliteFailure {
    code: c_int,
    message: String,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                sqlx::error::ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => sqlx::error::ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => sqlx::error::ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_by_number_step_and_report_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::File::create(&path).unwrap();
        let mut db = Db::open(&path, SqliteSync::Normal).unwrap();
        db.exec("CREATE TABLE t (a BIGINT, b TEXT)").unwrap();
        for (a, b) in [(1, "x"), (2, "ÿ")] {
            db.stmt("INSERT INTO t (b, a) VALUES ($2, $1)")
                .unwrap()
                .bind_int(1, a)
                .unwrap()
                .bind_text(2, b)
                .unwrap()
                .run()
                .unwrap();
        }
        let select = db.stmt("SELECT a, b, NULL FROM t WHERE a >= $1 ORDER BY a").unwrap();
        select.bind_int(1, 0).unwrap();
        let mut rows = Vec::new();
        while select.step().unwrap() {
            rows.push((select.int(0), select.text(1).into_owned(), select.opt_int(2)));
        }
        assert_eq!(rows, vec![(1, "x".into(), None), (2, "ÿ".into(), None)]);
        let err = db.stmt("SELECT nope FROM t").err().unwrap();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        db.exec("CREATE UNIQUE INDEX t_a ON t (a)").unwrap();
        let err = db.exec("INSERT INTO t (a) VALUES (1)").unwrap_err();
        let StoreError::Database(sqlx::Error::Database(inner)) = err else { panic!("{err:?}") };
        assert!(inner.is_unique_violation());
        assert_eq!(db.data_version().unwrap(), db.data_version().unwrap());
        let many = values_sql("INSERT INTO t (a, b) VALUES ", 2, 2, "");
        assert_eq!(many, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        let many: &'static str = Box::leak(many.into_boxed_str());
        let text = String::from("copied? no");
        db.stmt(many)
            .unwrap()
            .run_values(&[Value::Int(7), Value::Text(&text), Value::Int(8), Value::Text("z")])
            .unwrap();
        let count = db.stmt("SELECT COUNT(*) FROM t WHERE a IN (7, 8) AND b IN ('copied? no', 'z')").unwrap();
        assert_eq!(count.one_int().unwrap(), Some(2));
    }
}
