//! Event ids in bulk (`commands/tick_frames.py`): `domain.derive.event_id_for` is uuid5 — SHA-1 of the namespace
//! and the name — which has no column form in polars or numpy, and one `hashlib` call a row was a tenth of a file
//! ingest's CPU.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha1::{Digest, Sha1};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The uuid5 of `namespace` and each name (UTF-8 `names[offsets[i]..offsets[i + 1]]`, the offsets n + 1 int64s), as
/// 36 ASCII characters a row one after another: the canonical text, lower-case hex with its four dashes.
#[pyfunction]
pub fn uuid5<'py>(
    py: Python<'py>,
    namespace: &[u8],
    names: &[u8],
    offsets: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    if namespace.len() != 16 || !offsets.len().is_multiple_of(8) || offsets.is_empty() {
        return Err(PyValueError::new_err(
            "uuid5 takes a 16-byte namespace and n + 1 int64 offsets",
        ));
    }
    let offsets: Vec<usize> = offsets
        .chunks_exact(8)
        .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")) as usize)
        .collect();
    if offsets.windows(2).any(|w| w[0] > w[1]) || offsets[offsets.len() - 1] > names.len() {
        return Err(PyValueError::new_err(
            "the name offsets do not fit the names",
        ));
    }
    let text = py.detach(|| {
        let mut text = Vec::with_capacity((offsets.len() - 1) * 36);
        for span in offsets.windows(2) {
            let mut digest = Sha1::new();
            digest.update(namespace);
            digest.update(&names[span[0]..span[1]]);
            let mut id: [u8; 16] = digest.finalize()[..16].try_into().expect("16 of 20 bytes");
            id[6] = (id[6] & 0x0F) | 0x50; // version 5
            id[8] = (id[8] & 0x3F) | 0x80; // RFC 4122 variant
            for (i, byte) in id.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    text.push(b'-');
                }
                text.push(HEX[(byte >> 4) as usize]);
                text.push(HEX[(byte & 0x0F) as usize]);
            }
        }
        text
    });
    Ok(PyBytes::new(py, &text))
}
