//! The registry record file: line-oriented UTF-8, tab-separated, read and written as a stream.
//!
//! ```text
//! #cyberid-registry/1<TAB>id_number<TAB>name<TAB>birth_date<TAB>sex<TAB>face
//! 11010519491231002X<TAB>王芳<TAB>1949-12-31<TAB>female<TAB><base64url of 128 bytes>
//! ```
//!
//! Tabs and newlines cannot occur inside a field: names reject control characters and the
//! other fields have fixed alphabets, so no quoting is needed. Reading uses one reusable line
//! buffer with a length cap, so memory stays bounded whatever the file size or content.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cyberid_domain::{CitizenIdNumber, FACE_DIMS, FaceTemplate, PersonName, PersonRecord, Sex};
use time::{Date, Month};

/// The first line of every registry file (format version 1).
pub const HEADER: &str = "#cyberid-registry/1\tid_number\tname\tbirth_date\tsex\tface";

const MAGIC: &str = "#cyberid-registry/";
/// Longest accepted line. A valid record is under 500 bytes (18 + 4 × 64 + 10 + 6 + 171 + tabs).
const MAX_LINE_BYTES: usize = 2048;
/// base64url without padding of [`FACE_DIMS`] bytes.
const FACE_B64_LEN: usize = (FACE_DIMS * 4).div_ceil(3);

/// A problem reading a registry file, located by 1-based line number (0 when the file could
/// not be opened). Messages never contain ID numbers or names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryFileError {
    /// 1-based line number; 0 for errors not tied to a line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl RegistryFileError {
    fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for RegistryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for RegistryFileError {}

/// Writes records in the registry file format.
pub struct RegistryWriter<W: Write> {
    out: W,
    // Reused for every record so writing allocates nothing per line.
    line: Vec<u8>,
}

impl<W: Write> RegistryWriter<W> {
    /// Writes the header and returns a writer for the records.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(HEADER.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(Self {
            out,
            line: Vec::with_capacity(512),
        })
    }

    /// Writes one record line.
    pub fn write(&mut self, record: &PersonRecord) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(record.id_number.as_str().as_bytes());
        line.push(b'\t');
        line.extend_from_slice(record.name.as_str().as_bytes());
        line.push(b'\t');
        push_date(line, record.birth_date);
        line.push(b'\t');
        line.extend_from_slice(record.sex.as_str().as_bytes());
        line.push(b'\t');
        let mut face = [0u8; FACE_B64_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(record.face.to_bytes(), &mut face)
            .map_err(|e| io::Error::other(e.to_string()))?;
        line.extend_from_slice(&face[..n]);
        line.push(b'\n');
        self.out.write_all(line)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// `YYYY-MM-DD` without going through a general formatter (this runs once per record).
fn push_date(line: &mut Vec<u8>, date: Date) {
    let year = date.year().clamp(0, 9999).unsigned_abs();
    let month = u32::from(u8::from(date.month()));
    let day = u32::from(date.day());
    for (value, width) in [(year, 4u32), (month, 2), (day, 2)] {
        if width != 4 {
            line.push(b'-');
        }
        for k in (0..width).rev() {
            let digit = (value / 10u32.pow(k)) % 10;
            line.push(b'0' + u8::try_from(digit).unwrap_or(0));
        }
    }
}

fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Parses one record line (without its line ending).
fn parse_record(line: &str, line_no: u64) -> Result<PersonRecord, RegistryFileError> {
    let err = |m: String| RegistryFileError::at(line_no, m);
    let mut fields = line.split('\t');
    let mut cols: [&str; 5] = [""; 5];
    let mut found = 0usize;
    for field in fields.by_ref() {
        if let Some(slot) = cols.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    if found != cols.len() {
        return Err(err(format!(
            "expected 5 tab-separated columns, found {found}"
        )));
    }
    let [id, name, birth, sex, face] = cols;
    // The number alone, as `find` compares it: parsing would trim the spaces, and the record
    // would load yet never be found by its number.
    if id.trim() != id {
        return Err(err(
            "invalid ID number: the column holds the 18 characters alone, without spaces".into(),
        ));
    }
    let id = CitizenIdNumber::parse(id).map_err(|e| err(format!("invalid ID number: {e}")))?;
    let name = PersonName::parse(name).map_err(|e| err(format!("invalid name: {e}")))?;
    let birth_date =
        parse_date(birth).ok_or_else(|| err("birth date is not a valid YYYY-MM-DD date".into()))?;
    let sex = Sex::parse(sex).ok_or_else(|| err("sex must be \"male\" or \"female\"".into()))?;
    let face = decode_face(face).map_err(err)?;
    PersonRecord::new(id, name, birth_date, sex, face).map_err(|e| err(e.to_string()))
}

fn decode_face(text: &str) -> Result<FaceTemplate, String> {
    if text.len() != FACE_B64_LEN {
        return Err(format!(
            "face template must be {FACE_B64_LEN} base64url characters ({FACE_DIMS} bytes), found {}",
            text.len()
        ));
    }
    // Room for the decoder's length estimate; exact length is checked below.
    let mut bytes = [0u8; FACE_DIMS + 3];
    let n = URL_SAFE_NO_PAD
        .decode_slice(text, &mut bytes)
        .map_err(|_| "face template is not valid base64url".to_owned())?;
    FaceTemplate::from_bytes(&bytes[..n]).map_err(|e| e.to_string())
}

enum RawLine {
    Line,
    TooLong,
    Eof,
}

/// Reads records from a registry file, one line at a time.
pub struct RegistryReader<R: BufRead> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl<R: BufRead> RegistryReader<R> {
    /// Checks the header and returns a reader positioned at the first record.
    pub fn new(input: R) -> Result<Self, RegistryFileError> {
        let mut reader = Self {
            input,
            buf: Vec::with_capacity(512),
            line: 0,
            done: false,
        };
        let not_registry = || {
            RegistryFileError::at(
                1,
                "not a cyberid registry file (the first line must be the #cyberid-registry/1 header)",
            )
        };
        match reader.read_raw()? {
            RawLine::Line => {}
            RawLine::TooLong | RawLine::Eof => return Err(not_registry()),
        }
        if reader.buf == HEADER.as_bytes() {
            return Ok(reader);
        }
        let Some(rest) = reader.buf.strip_prefix(MAGIC.as_bytes()) else {
            return Err(not_registry());
        };
        let version = rest.split(|&b| b == b'\t').next().unwrap_or_default();
        Err(RegistryFileError::at(
            1,
            if version == b"1" {
                "the header must name the columns id_number, name, birth_date, sex, face"
            } else {
                "unsupported registry file version (this software reads version 1)"
            },
        ))
    }

    /// Reads the next line into `buf` without its line ending. I/O errors end the stream.
    fn read_raw(&mut self) -> Result<RawLine, RegistryFileError> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.io_error(&e))?;
        if n == 0 {
            return Ok(RawLine::Eof);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 == limit {
            self.skip_rest_of_line()?;
            return Ok(RawLine::TooLong);
        }
        Ok(RawLine::Line)
    }

    fn skip_rest_of_line(&mut self) -> Result<(), RegistryFileError> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(&e)),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.input.consume(p + 1);
                    return Ok(());
                }
                None => {
                    let len = chunk.len();
                    self.input.consume(len);
                }
            }
        }
    }

    fn io_error(&self, e: &io::Error) -> RegistryFileError {
        RegistryFileError::at(self.line + 1, format!("read error: {e}"))
    }

    fn too_long(&self) -> RegistryFileError {
        RegistryFileError::at(
            self.line,
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        )
    }

    fn parse_current(&self) -> Result<PersonRecord, RegistryFileError> {
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| RegistryFileError::at(self.line, "line is not valid UTF-8"))?;
        parse_record(text, self.line)
    }

    /// Scans the rest of the file for the record with this ID number, parsing only the
    /// matching line: what [`find_in_file`] does with an opened file.
    pub fn find(
        &mut self,
        id: &CitizenIdNumber,
    ) -> Result<Option<PersonRecord>, RegistryFileError> {
        let key = id.as_str().as_bytes();
        loop {
            match self.read_raw()? {
                RawLine::Eof => return Ok(None),
                RawLine::TooLong => continue,
                RawLine::Line => {
                    let matches = self.buf.get(key.len()) == Some(&b'\t')
                        && self
                            .buf
                            .get(..key.len())
                            .is_some_and(|k| k.eq_ignore_ascii_case(key));
                    if matches {
                        return self.parse_current().map(Some);
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for RegistryReader<R> {
    type Item = Result<PersonRecord, RegistryFileError>;

    /// The next record, or an error for a malformed line (reading continues with the next
    /// line); `None` at the end of the file or after a read error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_raw() {
            Ok(RawLine::Eof) => {
                self.done = true;
                None
            }
            Ok(RawLine::TooLong) => Some(Err(self.too_long())),
            Ok(RawLine::Line) => Some(self.parse_current()),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Opens a registry file and checks its header.
pub fn open_registry_file(
    path: &Path,
) -> Result<RegistryReader<BufReader<File>>, RegistryFileError> {
    let file = File::open(path).map_err(|e| {
        RegistryFileError::at(
            0,
            format!("cannot open registry file {}: {e}", path.display()),
        )
    })?;
    RegistryReader::new(BufReader::with_capacity(1 << 16, file))
}

/// Finds a record by linear scan of a registry file. Malformed lines other than the matching
/// one are skipped: a lookup is not a validation pass.
pub fn find_in_file(
    path: &Path,
    id: &CitizenIdNumber,
) -> Result<Option<PersonRecord>, RegistryFileError> {
    open_registry_file(path)?.find(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::generate::Generator;

    fn sample_file(records: &[PersonRecord]) -> Vec<u8> {
        let mut w = RegistryWriter::new(Vec::new()).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Vec<Result<PersonRecord, RegistryFileError>> {
        RegistryReader::new(bytes).unwrap().collect()
    }

    #[test]
    fn write_read_round_trip() {
        let records: Vec<_> = Generator::new(42).take(500).collect();
        let bytes = sample_file(&records);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with(&format!("{HEADER}\n")));
        assert_eq!(text.lines().count(), 501);
        let back: Vec<_> = read_all(&bytes).into_iter().map(Result::unwrap).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn line_format() {
        let r = Generator::new(1).next().unwrap();
        let bytes = sample_file(std::slice::from_ref(&r));
        let text = String::from_utf8(bytes).unwrap();
        let line = text.lines().nth(1).unwrap();
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5);
        assert_eq!(cols[0], r.id_number.as_str());
        assert_eq!(cols[1], r.name.as_str());
        assert_eq!(cols[2], r.birth_date.to_string());
        assert_eq!(cols[3], r.sex.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(cols[4]).unwrap(), r.face.to_bytes());
    }

    #[test]
    fn crlf_is_tolerated() {
        let records: Vec<_> = Generator::new(2).take(3).collect();
        let text = String::from_utf8(sample_file(&records))
            .unwrap()
            .replace('\n', "\r\n");
        let back: Vec<_> = read_all(text.as_bytes())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, records);
    }

    #[test]
    fn header_errors() {
        let header_error = |text: &str| RegistryReader::new(text.as_bytes()).err().unwrap();
        for bad in ["", "\n", "id_number\tname\n", "11010519491231002X\t王芳\n"] {
            let err = header_error(bad);
            assert_eq!(err.line, 1);
            assert!(
                err.to_string()
                    .starts_with("line 1: not a cyberid registry file"),
                "{err}"
            );
        }
        for bad in ["#cyberid-registry/1\n", "#cyberid-registry/1\tid\tname\n"] {
            let err = header_error(bad);
            assert!(err.message.contains("must name the columns"), "{err}");
        }
        for bad in ["#cyberid-registry/2\tid_number\n", "#cyberid-registry/10\n"] {
            let err = header_error(bad);
            assert!(
                err.message.contains("unsupported registry file version"),
                "{err}"
            );
        }
        // Header fine, no records.
        assert_eq!(read_all(format!("{HEADER}\n").as_bytes()).len(), 0);
        assert_eq!(read_all(HEADER.as_bytes()).len(), 0);
    }

    /// A file with the given record lines (line 2 onward), built from one valid record.
    fn mutate(edit: impl Fn(&mut Vec<String>)) -> (Vec<u8>, PersonRecord) {
        let records: Vec<_> = Generator::new(9).take(3).collect();
        let text = String::from_utf8(sample_file(&records)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        edit(&mut lines);
        (
            format!("{}\n", lines.join("\n")).into_bytes(),
            records[1].clone(),
        )
    }

    fn error_on_line_3(edit: impl Fn(&mut Vec<String>)) -> RegistryFileError {
        let (bytes, victim) = mutate(edit);
        let results = read_all(&bytes);
        assert_eq!(results.len(), 3);
        assert!(
            results[0].is_ok() && results[2].is_ok(),
            "other lines still read"
        );
        let err = results[1].clone().unwrap_err();
        assert_eq!(err.line, 3);
        let msg = err.to_string();
        assert!(msg.starts_with("line 3: "), "{msg}");
        assert!(!msg.contains(victim.id_number.as_str()), "{msg}");
        assert!(!msg.contains(victim.name.as_str()), "{msg}");
        err
    }

    fn edit_column(col: usize, f: impl Fn(&str) -> String) -> impl Fn(&mut Vec<String>) {
        move |lines| {
            let mut cols: Vec<String> = lines[2].split('\t').map(str::to_owned).collect();
            cols[col] = f(&cols[col]);
            lines[2] = cols.join("\t");
        }
    }

    #[test]
    fn record_errors_carry_line_numbers() {
        let err = error_on_line_3(|lines| lines[2].push_str("\textra"));
        assert_eq!(err.message, "expected 5 tab-separated columns, found 6");
        let err = error_on_line_3(|lines| {
            let cut = lines[2].rfind('\t').unwrap();
            lines[2].truncate(cut);
        });
        assert_eq!(err.message, "expected 5 tab-separated columns, found 4");
        let err = error_on_line_3(edit_column(2, |_| "1990-02-30".into()));
        assert_eq!(err.message, "birth date is not a valid YYYY-MM-DD date");
        let err = error_on_line_3(edit_column(2, |_| "19900101".into()));
        assert_eq!(err.message, "birth date is not a valid YYYY-MM-DD date");
        let err = error_on_line_3(edit_column(2, |d| {
            let date = parse_date(d).unwrap();
            let other = date.next_day().or(date.previous_day()).unwrap();
            other.to_string()
        }));
        assert_eq!(
            err.to_string(),
            "line 3: birth date does not match the ID number"
        );
        let err = error_on_line_3(edit_column(3, |s| {
            if s == "male" {
                "female".into()
            } else {
                "male".into()
            }
        }));
        assert_eq!(err.message, "sex does not match the ID number");
        let err = error_on_line_3(edit_column(3, |_| "M".into()));
        assert!(err.message.starts_with("sex must be"));
        let err = error_on_line_3(edit_column(0, |id| {
            let mut id = id.to_owned();
            let last = if id.ends_with('0') { "1" } else { "0" };
            id.replace_range(17.., last);
            id
        }));
        assert!(
            err.message.starts_with("invalid ID number: "),
            "{}",
            err.message
        );
        let err = error_on_line_3(edit_column(1, |_| " ".into()));
        assert_eq!(err.message, "invalid name: the name is empty");
        let err = error_on_line_3(edit_column(4, |f| f[..100].to_owned()));
        assert!(
            err.message.starts_with("face template must be 171"),
            "{}",
            err.message
        );
        let err = error_on_line_3(edit_column(4, |f| format!("{}+", &f[..170])));
        assert_eq!(err.message, "face template is not valid base64url");
        let err = error_on_line_3(|lines| lines[2].clear());
        assert_eq!(err.message, "expected 5 tab-separated columns, found 1");
        let err = error_on_line_3(|lines| lines[2] = "x".repeat(10_000));
        assert!(err.message.contains("longer than"), "{}", err.message);
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        let (mut bytes, _) = mutate(|_| {});
        // Replace the first byte of line 3's name column with an invalid UTF-8 byte.
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let name_at = line_starts[2] + 19;
        bytes[name_at] = 0xff;
        let results = read_all(&bytes);
        let err = results[1].clone().unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (3, "line is not valid UTF-8")
        );
        assert!(results[2].is_ok());
    }

    #[test]
    fn files_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.tsv");
        let written = crate::generate::write_registry(&path, 2_000, 77).unwrap();
        assert_eq!(written, 2_000);
        let records: Vec<_> = open_registry_file(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records.len(), 2_000);
        for r in [&records[0], &records[999], &records[1_999]] {
            assert_eq!(find_in_file(&path, &r.id_number).unwrap().as_ref(), Some(r));
        }
        let absent = Generator::new(78).next().unwrap();
        assert_eq!(find_in_file(&path, &absent.id_number).unwrap(), None);
        let missing = dir.path().join("nope.tsv");
        let err = open_registry_file(&missing).err().unwrap();
        assert_eq!(err.line, 0);
        assert!(err.to_string().contains("cannot open registry file"));
        assert!(find_in_file(&missing, &absent.id_number).is_err());
    }

    #[test]
    fn an_id_number_with_spaces_around_it_is_refused() {
        // Found with the registry_file fuzz target: such a line loaded (parsing trims the
        // number) but `find` never found it, comparing the column as written.
        let record = Generator::new(5).next().unwrap();
        let file = sample_file(std::slice::from_ref(&record));
        let text = String::from_utf8(file).unwrap();
        let (header, line) = text.split_once('\n').unwrap();
        for spaced in [format!(" {line}"), line.replacen('\t', " \t", 1)] {
            let file = format!("{header}\n{spaced}");
            let results = read_all(file.as_bytes());
            let err = results[0].as_ref().expect_err("refused");
            assert_eq!(err.line, 2);
            assert!(err.message.contains("without spaces"), "{}", err.message);
            assert!(!err.message.contains(record.id_number.as_str()));
        }
        let found = RegistryReader::new(text.as_bytes())
            .unwrap()
            .find(&record.id_number)
            .unwrap();
        assert_eq!(found.as_ref(), Some(&record));
    }
}
