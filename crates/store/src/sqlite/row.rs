//! Rows read by column name, in one way for every query of this backend.

use std::cell::Cell;
use std::fmt::Display;

use cyberid_domain::Claim;
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, Params, Row, Statement};

use super::db_error;
use crate::StoreError;
use crate::records::StoredText;

/// One row's columns, read by name through fallible getters: a missing column, a NULL where
/// a value belongs or a value of another type is [`StoreError::Corrupt`] naming the column,
/// never a panic and never a value read from the wrong place.
///
/// Columns of a joined table are selected under a prefix of the table's (`account_…`,
/// `rp_…`, `device_…`), so that names cannot clash; errors name the table's own column.
///
/// Cost: rusqlite finds a name by asking SQLite for each column's name in turn, about 30 ns
/// a column compared, so a sign-in's 22 columns read that way cost some 7 µs a row, several
/// times the read itself. A reader therefore first checks the column after the one it read
/// last (one comparison when it reads in the select's order, as the readers here do) and
/// searches only when that is not the one: about 0.7 µs a row. Should that ever show in a
/// profile, the indexes can be resolved once per cached statement; every read goes through
/// [`Fields::index`], so only it would change.
pub(crate) struct Fields<'a, 'stmt> {
    row: &'a Row<'stmt>,
    table: &'static str,
    prefix: &'static str,
    /// Where the next column read is expected.
    next: Cell<usize>,
}

impl<'a, 'stmt> Fields<'a, 'stmt> {
    /// The columns of `table` in `row`, selected under `prefix` (empty: their own names).
    pub(crate) fn new(row: &'a Row<'stmt>, table: &'static str, prefix: &'static str) -> Self {
        Self {
            row,
            table,
            prefix,
            next: Cell::new(0),
        }
    }

    pub(crate) fn get<T: FromSql>(&self, column: &'static str) -> Result<T, StoreError> {
        self.row
            .get(self.index(column)?)
            .map_err(|e| self.corrupt(column, e))
    }

    /// The index of the column named `column` (see the cost note above).
    fn index(&self, column: &'static str) -> Result<usize, StoreError> {
        let statement: &Statement<'_> = self.row.as_ref();
        let next = self.next.get();
        let index = if statement.column_name(next).is_ok_and(|name| name == column) {
            next
        } else {
            statement
                .column_index(column)
                .map_err(|e| self.corrupt(column, e))?
        };
        self.next.set(index + 1);
        Ok(index)
    }

    /// A count or index, stored as a signed integer, as the unsigned number it is.
    pub(crate) fn unsigned<T, U>(&self, column: &'static str) -> Result<U, StoreError>
    where
        T: FromSql,
        U: TryFrom<T>,
        <U as TryFrom<T>>::Error: Display,
    {
        U::try_from(self.get::<T>(column)?).map_err(|e| self.corrupt(column, e))
    }

    /// A value of a closed set, stored as its name (see [`StoredText`]).
    pub(crate) fn text<T: StoredText>(&self, column: &'static str) -> Result<T, StoreError> {
        self.optional_text(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where a value belongs"))
    }

    /// [`Fields::text`] of a column that may be NULL.
    pub(crate) fn optional_text<T: StoredText>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let Some(name) = self.name(column)? else {
            return Ok(None);
        };
        T::from_stored(name)
            .map(Some)
            .ok_or_else(|| self.corrupt(column, format!("unknown value {name:?}")))
    }

    /// A claim list, stored whole as a JSON array of claim names.
    pub(crate) fn claims(&self, column: &'static str) -> Result<Vec<Claim>, StoreError> {
        let text = self
            .name(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where a list belongs"))?;
        let names: Vec<&str> = serde_json::from_str(text).map_err(|e| self.corrupt(column, e))?;
        names
            .into_iter()
            .map(|name| {
                Claim::parse(name)
                    .ok_or_else(|| self.corrupt(column, format!("unknown claim {name:?}")))
            })
            .collect()
    }

    /// A text column's value as stored (borrowed from the row, not copied).
    fn name(&self, column: &'static str) -> Result<Option<&'a str>, StoreError> {
        let value = self
            .row
            .get_ref(self.index(column)?)
            .map_err(|e| self.corrupt(column, e))?;
        match value {
            ValueRef::Null => Ok(None),
            value => value
                .as_str()
                .map(Some)
                .map_err(|e| self.corrupt(column, e)),
        }
    }

    /// A list stored whole as a JSON array of strings.
    pub(crate) fn json_list(&self, column: &'static str) -> Result<Vec<String>, StoreError> {
        let text: String = self.get(column)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(column, e))
    }

    /// [`StoreError::Corrupt`] for `column`, with why.
    pub(crate) fn corrupt(&self, column: &'static str, why: impl Display) -> StoreError {
        let own = column.strip_prefix(self.prefix).unwrap_or(column);
        StoreError::Corrupt(format!("{}.{own}: {why}", self.table))
    }
}

/// The first row `sql` returns for `params`, read by `read`; `None` when there is none.
/// Statements go through the connection's statement cache. `fail` maps a database error
/// (an enrolment maps constraint violations to its own errors).
pub(crate) fn query_one<T, E: From<StoreError>>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    fail: fn(rusqlite::Error) -> E,
    read: impl FnOnce(&Row<'_>) -> Result<T, E>,
) -> Result<Option<T>, E> {
    let mut statement = conn.prepare_cached(sql).map_err(fail)?;
    let mut rows = statement.query(params).map_err(fail)?;
    match rows.next().map_err(fail)? {
        Some(row) => read(row).map(Some),
        None => Ok(None),
    }
}

/// Every row `sql` returns for `params`, each read by `read`.
pub(crate) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = statement.query(params).map_err(db_error)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        all.push(read(row)?);
    }
    Ok(all)
}

/// Runs `sql` through the statement cache; returns how many rows it changed.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(db_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Columns read out of the select's order, or missing, are still found or refused by
    /// name: the guess at the next column is only a shortcut.
    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let conn = Connection::open_in_memory().unwrap();
        let read = |row: &Row<'_>| {
            let f = Fields::new(row, "t", "");
            let c: i64 = f.get("c")?;
            let a: i64 = f.get("a")?;
            let b: i64 = f.get("b")?;
            let a_again: i64 = f.get("a")?;
            Ok((a, b, c, a_again))
        };
        let found = query_one(&conn, "SELECT 1 AS a, 2 AS b, 3 AS c", [], db_error, read);
        assert_eq!(found.unwrap(), Some((1, 2, 3, 1)));
        let missing = query_one(&conn, "SELECT 1 AS a", [], db_error, |row| {
            Fields::new(row, "t", "").get::<i64>("b")
        });
        assert!(matches!(missing, Err(StoreError::Corrupt(message)) if message.starts_with("t.b")));
    }
}
