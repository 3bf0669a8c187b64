//! The registry file (`RegistryReader`): what `cyberid registry import` and the file-backed
//! registry read. The input is a file (the version-1 header is put in front unless the
//! input starts with `#`). Records read are written out again (`RegistryWriter`) and read
//! back as the same records; every record read is what `find` returns for its ID number;
//! an error names a line of the file and never the ID number or name on it.
#![no_main]

use std::io::Cursor;

use cyberid_domain::PersonRecord;
use cyberid_registry::file::{HEADER, RegistryFileError, RegistryReader, RegistryWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = Vec::with_capacity(HEADER.len() + 1 + data.len());
    if data.first() != Some(&b'#') {
        file.extend_from_slice(HEADER.as_bytes());
        file.push(b'\n');
    }
    file.extend_from_slice(data);
    let lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();

    let reader = match RegistryReader::new(Cursor::new(&file)) {
        Ok(reader) => reader,
        Err(error) => {
            assert_eq!(error.line, 1);
            return;
        }
    };
    let mut records = Vec::new();
    for item in reader {
        match item {
            Ok(record) => records.push(record),
            Err(error) => check_error(&error, &lines),
        }
    }

    let mut writer = RegistryWriter::new(Vec::new()).expect("writes to memory");
    for record in &records {
        writer.write(record).expect("writes to memory");
    }
    let written = writer.finish().expect("writes to memory");
    let again: Vec<PersonRecord> = RegistryReader::new(Cursor::new(&written))
        .expect("the writer's header")
        .collect::<Result<_, _>>()
        .expect("what the writer writes reads back");
    assert!(again == records, "records changed in a write and read");

    for record in records.iter().take(8) {
        let found = RegistryReader::new(Cursor::new(&file))
            .expect("read once already")
            .find(&record.id_number);
        let first = records.iter().find(|r| r.id_number == record.id_number);
        match found {
            Ok(Some(found)) => assert!(Some(&found) == first, "find returned another record"),
            Ok(None) => panic!("a record read from the file is not found in it"),
            // An earlier line with this ID number is malformed: find reports it.
            Err(error) => check_error(&error, &lines),
        }
    }
});

fn check_error(error: &RegistryFileError, lines: &[&[u8]]) {
    let line = usize::try_from(error.line).expect("a line number");
    assert!(line >= 2, "a record error on the header's line");
    let Some(text) = lines
        .get(line - 1)
        .and_then(|l| std::str::from_utf8(l).ok())
    else {
        return;
    };
    let mut fields = text.trim_end_matches('\r').split('\t');
    let id = fields.next().unwrap_or_default().trim();
    let name = fields.next().unwrap_or_default().trim();
    let number_like = id.len() >= 8
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x');
    if number_like {
        assert!(!error.message.contains(id), "{}", error.message);
    }
    if !name.is_ascii() {
        assert!(!error.message.contains(name), "{}", error.message);
    }
}
