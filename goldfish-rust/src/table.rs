//! A small column table (`OutputData::Tabular`) with CSV read/write.
//!
//! Column types follow pandas' inference: all integers → `int64`; numbers with gaps → `float64`
//! (gaps are NaN); True/False → `bool`; anything else → `object` (strings, gaps are None).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{GoldfishError, Result};
use crate::fsutil::atomic_write_with;

/// Delimiters a CSV signal may use (the source-metadata rule).
pub const CSV_DELIMITERS: [u8; 5] = [b',', b';', b'|', b'\t', b':'];

/// Cells pandas reads as missing.
const NA_VALUES: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// One typed column.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Int64(v) => v.len(),
            Column::Float64(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// pandas dtype name: `int64`, `float64`, `bool` or `object`.
    pub fn dtype(&self) -> &'static str {
        match self {
            Column::Int64(_) => "int64",
            Column::Float64(_) => "float64",
            Column::Bool(_) => "bool",
            Column::Str(_) => "object",
        }
    }

    /// Numeric view (ints and bools converted, strings None).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::Int64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::Float64(v) => Some(v.clone()),
            Column::Bool(v) => Some(v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect()),
            Column::Str(_) => None,
        }
    }

    fn cell(&self, row: usize) -> String {
        match self {
            Column::Int64(v) => v[row].to_string(),
            Column::Float64(v) => format_float(v[row]),
            Column::Bool(v) => (if v[row] { "True" } else { "False" }).to_string(),
            Column::Str(v) => v[row].clone().unwrap_or_default(),
        }
    }
}

fn format_float(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else if x.is_infinite() {
        (if x > 0.0 { "inf" } else { "-inf" }).to_string()
    } else {
        // Debug keeps a decimal point on whole numbers (1.0), like pandas.
        format!("{:?}", x)
    }
}

/// Named columns of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    /// Build from `(name, column)` pairs; names must be unique and lengths equal.
    pub fn from_columns<S: Into<String>>(columns: Vec<(S, Column)>) -> Result<Self> {
        let mut t = Table::new();
        for (name, col) in columns {
            t.push_column(name, col)?;
        }
        Ok(t)
    }

    /// Append a column.
    pub fn push_column(&mut self, name: impl Into<String>, column: Column) -> Result<()> {
        let name = name.into();
        if self.names.contains(&name) {
            return Err(GoldfishError::Schema(format!(
                "duplicate column '{}'. Fix: give every column a unique name.",
                name
            )));
        }
        if !self.columns.is_empty() && column.len() != self.n_rows() {
            return Err(GoldfishError::Schema(format!(
                "column '{}' has {} rows but the table has {}. Fix: make all columns the same length.",
                name,
                column.len(),
                self.n_rows()
            )));
        }
        self.names.push(name);
        self.columns.push(column);
        Ok(())
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names.iter().position(|n| n == name).map(|i| &self.columns[i])
    }

    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.names.iter().map(|s| s.as_str()).zip(self.columns.iter())
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map(|c| c.len()).unwrap_or(0)
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// `(column, pandas dtype)` in column order.
    pub fn dtypes(&self) -> Vec<(&str, &'static str)> {
        self.columns().map(|(n, c)| (n, c.dtype())).collect()
    }

    /// Parse CSV text. `delimiter: None` sniffs one of `, ; | \t :` from the header line.
    pub fn from_csv_str(text: &str, delimiter: Option<u8>) -> Result<Self> {
        let delim = match delimiter {
            Some(d) => check_delimiter(d)?,
            None => sniff_delimiter(text),
        };
        let mut rows = parse_records(text, delim)?;
        if rows.is_empty() {
            return Ok(Table::new());
        }
        let header = rows.remove(0);
        let width = header.len();
        for (i, r) in rows.iter().enumerate() {
            if r.len() != width {
                return Err(GoldfishError::Format(format!(
                    "CSV row {} has {} fields but the header has {}. Fix: check the delimiter ('{}') and quoting.",
                    i + 2,
                    r.len(),
                    width,
                    (delim as char).escape_default()
                )));
            }
        }
        let mut t = Table::new();
        for (c, name) in header.into_iter().enumerate() {
            let cells: Vec<&str> = rows.iter().map(|r| r[c].as_str()).collect();
            t.push_column(name, infer_column(&cells))?;
        }
        Ok(t)
    }

    /// Read a CSV file (see `from_csv_str`).
    pub fn read_csv(path: impl AsRef<Path>, delimiter: Option<u8>) -> Result<Self> {
        let path = path.as_ref();
        let mut text = String::new();
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(GoldfishError::io_ctx(format!("read {}", path.display())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Table::from_csv_str(text, delimiter).map_err(|e| GoldfishError::Format(format!("{}: {}", path.display(), e)))
    }

    /// Render as CSV with a header row and `\n` line ends (like `to_csv(index=False)`).
    pub fn to_csv_string(&self, delimiter: u8) -> Result<String> {
        let d = check_delimiter(delimiter)? as char;
        let mut out = String::new();
        let quote = |s: &str| -> String {
            if s.contains(d) || s.contains('"') || s.contains('\n') || s.contains('\r') {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        out.push_str(&self.names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(&d.to_string()));
        out.push('\n');
        for row in 0..self.n_rows() {
            let cells: Vec<String> = self.columns.iter().map(|c| quote(&c.cell(row))).collect();
            out.push_str(&cells.join(&d.to_string()));
            out.push('\n');
        }
        Ok(out)
    }

    /// Write a CSV file atomically.
    pub fn write_csv(&self, path: impl AsRef<Path>, delimiter: u8) -> Result<()> {
        let text = self.to_csv_string(delimiter)?;
        atomic_write_with(path.as_ref(), |f| f.write_all(text.as_bytes()))
    }
}

fn check_delimiter(d: u8) -> Result<u8> {
    if CSV_DELIMITERS.contains(&d) {
        Ok(d)
    } else {
        Err(GoldfishError::Config(format!(
            "CSV delimiter '{}' is not allowed. Fix: use one of , ; | tab :",
            (d as char).escape_default()
        )))
    }
}

/// Parse a delimiter given as config text (`","`, `"\t"`, `"tab"`).
pub(crate) fn delimiter_from_str(s: &str) -> Result<u8> {
    let b = match s {
        "\\t" | "tab" => b'\t',
        _ if s.len() == 1 => s.as_bytes()[0],
        _ => 0,
    };
    check_delimiter(b)
}

/// Pick the allowed delimiter that occurs most often (outside quotes) in the header line; default `,`.
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 5];
    let mut in_quotes = false;
    for b in text.bytes() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => break,
            _ if !in_quotes => {
                if let Some(i) = CSV_DELIMITERS.iter().position(|&d| d == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for i in 1..5 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    CSV_DELIMITERS[best]
}

/// RFC 4180 records: quoted fields, doubled quotes, embedded newlines, CRLF or LF.
fn parse_records(text: &str, delim: u8) -> Result<Vec<Vec<String>>> {
    let bytes = text.as_bytes();
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut in_quotes = false;
    let mut line_has_content = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(b);
            }
        } else if b == b'"' {
            in_quotes = true;
            line_has_content = true;
        } else if b == delim {
            row.push(String::from_utf8_lossy(&field).into_owned());
            field.clear();
            line_has_content = true;
        } else if b == b'\n' || b == b'\r' {
            if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            if line_has_content || !field.is_empty() {
                row.push(String::from_utf8_lossy(&field).into_owned());
                rows.push(std::mem::take(&mut row));
            }
            field.clear();
            line_has_content = false;
        } else {
            field.push(b);
            line_has_content = true;
        }
        i += 1;
    }
    if in_quotes {
        return Err(GoldfishError::Format("CSV ends inside a quoted field. Fix: close the quote.".to_string()));
    }
    if line_has_content || !field.is_empty() {
        row.push(String::from_utf8_lossy(&field).into_owned());
        rows.push(row);
    }
    Ok(rows)
}

fn infer_column(cells: &[&str]) -> Column {
    let is_na = |s: &str| NA_VALUES.contains(&s);
    let any_na = cells.iter().any(|s| is_na(s));
    if !any_na {
        if let Ok(v) = cells.iter().map(|s| s.trim().parse::<i64>()).collect::<std::result::Result<Vec<_>, _>>() {
            return Column::Int64(v);
        }
        let bools: Option<Vec<bool>> = cells
            .iter()
            .map(|s| match s.trim() {
                "True" | "true" | "TRUE" => Some(true),
                "False" | "false" | "FALSE" => Some(false),
                _ => None,
            })
            .collect();
        if let (Some(v), false) = (bools, cells.is_empty()) {
            return Column::Bool(v);
        }
    }
    let floats: Option<Vec<f64>> =
        cells.iter().map(|s| if is_na(s) { Some(f64::NAN) } else { s.trim().parse::<f64>().ok() }).collect();
    if let Some(v) = floats {
        return Column::Float64(v);
    }
    Column::Str(cells.iter().map(|s| if is_na(s) { None } else { Some(s.to_string()) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_pandas_like_types() {
        let t = Table::from_csv_str("a,b,c,d,e\n1,1.5,True,x,3\n2,,False,\"y,z\",\n", None).unwrap();
        assert_eq!(
            t.dtypes(),
            vec![("a", "int64"), ("b", "float64"), ("c", "bool"), ("d", "object"), ("e", "float64")]
        );
        assert_eq!(t.column("a"), Some(&Column::Int64(vec![1, 2])));
        assert_eq!(t.column("d"), Some(&Column::Str(vec![Some("x".into()), Some("y,z".into())])));
        match t.column("b").unwrap() {
            Column::Float64(v) => assert!(v[0] == 1.5 && v[1].is_nan()),
            other => panic!("{:?}", other),
        }
    }

    #[test]
    fn sniffs_and_round_trips_each_delimiter() {
        for &d in CSV_DELIMITERS.iter() {
            let t = Table::from_columns(vec![
                ("id", Column::Int64(vec![1, 2])),
                ("score", Column::Float64(vec![0.5, f64::NAN])),
                ("name", Column::Str(vec![Some("a\"q".into()), None])),
                ("ok", Column::Bool(vec![true, false])),
            ])
            .unwrap();
            let text = t.to_csv_string(d).unwrap();
            let back = Table::from_csv_str(&text, None).unwrap();
            assert_eq!(back.column_names(), t.column_names(), "delimiter {:?}\n{}", d as char, text);
            assert_eq!(back.column("id"), t.column("id"));
            assert_eq!(back.column("name"), t.column("name"));
            assert_eq!(back.column("ok"), t.column("ok"));
        }
    }

    #[test]
    fn quoted_newlines_crlf_and_errors() {
        let t = Table::from_csv_str("x;y\r\n\"a\nb\";2\r\n", Some(b';')).unwrap();
        assert_eq!(t.column("x"), Some(&Column::Str(vec![Some("a\nb".into())])));
        assert!(Table::from_csv_str("a,b\n1\n", None).unwrap_err().to_string().contains("row 2 has 1 fields"));
        assert!(Table::from_csv_str("a\n\"open\n", None).is_err());
        assert!(Table::from_csv_str("a\n1\n", Some(b'x')).unwrap_err().to_string().contains("not allowed"));
        assert_eq!(delimiter_from_str("\\t").unwrap(), b'\t');
        assert!(delimiter_from_str("ab").is_err());
    }

    #[test]
    fn mismatched_columns_rejected() {
        let mut t = Table::new();
        t.push_column("a", Column::Int64(vec![1])).unwrap();
        assert!(t.push_column("b", Column::Int64(vec![1, 2])).is_err());
        assert!(t.push_column("a", Column::Int64(vec![1])).is_err());
    }
}
