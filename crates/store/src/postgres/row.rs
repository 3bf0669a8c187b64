//! Rows read by column name, in one way for every query of this backend.

use std::cell::Cell;
use std::fmt::Display;

use cyberid_domain::Claim;
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::StoreError;
use crate::records::StoredText;

/// One row's columns, read by name through fallible getters (`try_get`, never the
/// panicking `get`): a missing column, a NULL where a value belongs or a value of another
/// type is [`StoreError::Corrupt`] naming the column.
///
/// Columns of a joined table are selected under a prefix of the table's (`account_…`,
/// `rp_…`, `device_…`), so that names cannot clash; errors name the table's own column.
///
/// Cost: a lookup by name compares the name with the row's column names in turn, so a row
/// of n columns read that way takes about n²/2 comparisons (a sign-in with its client and
/// account, 44 columns: some 1,000). A reader therefore first checks the column after the
/// one it read last (one comparison when it reads in the select's order, as the readers
/// here do) and searches only when that is not the one. Should that ever show in a
/// profile, the indexes can be resolved once per prepared statement; every read goes
/// through [`Fields::index`], so only it would change.
pub(crate) struct Fields<'r> {
    row: &'r Row,
    table: &'static str,
    prefix: &'static str,
    /// Where the next column read is expected.
    next: Cell<usize>,
}

impl<'r> Fields<'r> {
    /// The columns of `table` in `row`, selected under `prefix` (empty: their own names).
    pub(crate) fn new(row: &'r Row, table: &'static str, prefix: &'static str) -> Self {
        Self {
            row,
            table,
            prefix,
            next: Cell::new(0),
        }
    }

    pub(crate) fn get<T: FromSql<'r>>(&self, column: &'static str) -> Result<T, StoreError> {
        self.row
            .try_get(self.index(column)?)
            .map_err(|e| self.corrupt(column, e))
    }

    /// The index of the column named `column` (see the cost note above).
    fn index(&self, column: &'static str) -> Result<usize, StoreError> {
        let columns = self.row.columns();
        let next = self.next.get();
        let index = match columns.get(next) {
            Some(expected) if expected.name() == column => next,
            _ => columns
                .iter()
                .position(|candidate| candidate.name() == column)
                .ok_or_else(|| self.corrupt(column, "no such column in the row"))?,
        };
        self.next.set(index + 1);
        Ok(index)
    }

    /// A count or failure counter, stored as a signed integer, as the unsigned number it is.
    pub(crate) fn unsigned<T, U>(&self, column: &'static str) -> Result<U, StoreError>
    where
        T: FromSql<'r>,
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
        let Some(name) = self.get::<Option<&str>>(column)? else {
            return Ok(None);
        };
        T::from_stored(name)
            .map(Some)
            .ok_or_else(|| self.corrupt(column, format!("unknown value {name:?}")))
    }

    /// A claim list, stored as a `TEXT[]` of claim names.
    pub(crate) fn claims(&self, column: &'static str) -> Result<Vec<Claim>, StoreError> {
        self.get::<Vec<&str>>(column)?
            .into_iter()
            .map(|name| {
                Claim::parse(name)
                    .ok_or_else(|| self.corrupt(column, format!("unknown claim {name:?}")))
            })
            .collect()
    }

    /// A list stored whole as a JSON array of strings.
    pub(crate) fn json_list(&self, column: &'static str) -> Result<Vec<String>, StoreError> {
        let text: &str = self.get(column)?;
        serde_json::from_str(text).map_err(|e| self.corrupt(column, e))
    }

    /// [`StoreError::Corrupt`] for `column`, with why.
    pub(crate) fn corrupt(&self, column: &'static str, why: impl Display) -> StoreError {
        let own = column.strip_prefix(self.prefix).unwrap_or(column);
        StoreError::Corrupt(format!("{}.{own}: {why}", self.table))
    }
}

/// `columns` (a comma-separated list, each `column` or `column AS alias`) each taken from
/// table `table`: for a join, where the bare names would be ambiguous.
pub(crate) fn qualified(columns: &str, table: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("{table}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
