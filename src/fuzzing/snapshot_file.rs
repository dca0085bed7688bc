//! The `snapshot_file` harness: the snapshot loader over arbitrary bytes.

use crate::snapshot::FormatError;
use crate::snapshot::decode::{decode, read_sections};
use crate::snapshot::format::encode;
use crate::snapshot::info;

/// Loads `input` as a snapshot file. Whatever the bytes, this returns (never panics, never
/// reads out of bounds): `Ok(vcpus)` for a file that decodes whole, or the [`FormatError`],
/// whose offset lies within the file. A file that decodes is encoded again, and that decodes
/// to the same snapshot; every section of it has a summary.
///
/// Panics if an error's offset is past the end of the input, or a round trip changes the
/// snapshot.
pub fn snapshot_file(input: &[u8]) -> Result<usize, FormatError> {
    let snapshot = decode(input).inspect_err(|error| within(error, input))?;
    let sections = read_sections(input).inspect_err(|error| within(error, input))?;
    for (header, payload) in &sections.sections {
        assert!(!info::summary(header, payload, sections.origin.page_size).is_empty());
    }
    let again = encode(&snapshot);
    assert_eq!(
        decode(&again).as_ref(),
        Ok(&snapshot),
        "encode(decode(file)) decodes to the same snapshot"
    );
    Ok(snapshot.vcpus.len())
}

fn within(error: &FormatError, input: &[u8]) {
    assert!(
        error.offset <= input.len() as u64,
        "{error}: offset past the {} bytes of the file",
        input.len()
    );
}
