//! The batch encoder's fast path (`schemas/batch/encode.py`): column buffers of one event type to Confluent-framed
//! record values, byte for byte as fastavro writes them, in one pass over the rows.
//!
//! The schema comes flattened as the decoder's does: one leaf per op, depth first, each with its column's buffers
//! laid out as `schemas/batch/native.py` makes them (every column `rows` long; a null's value slot is ignored).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::{BOOLEAN, DECIMAL, DOUBLE, ENUM, INT, LONG, OPTIONAL, STRING, TIMESTAMP};

/// A leaf as Python gives it: (kind, validity or None, values, string offsets or None).
type ColumnBuffers<'py> = (
    u8,
    Option<Bound<'py, PyBytes>>,
    Bound<'py, PyBytes>,
    Option<Bound<'py, PyBytes>>,
);

/// One leaf: its kind, which rows are present (a byte a row, for an optional one), its values and, for strings, the
/// n + 1 byte offsets of each row's text in `values`.
struct Leaf<'a> {
    kind: u8,
    valid: Option<&'a [u8]>,
    values: &'a [u8],
    offsets: Option<&'a [u8]>,
}

fn word<const N: usize>(buf: &[u8], i: usize) -> [u8; N] {
    buf[i * N..(i + 1) * N].try_into().expect("a whole word")
}

/// Avro's long: zig-zag, then 7 bits a byte, low first.
pub(crate) fn long(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// fastavro's decimal bytes: the unscaled value in big-endian two's complement, `bit_length(|v|) / 8 + 1` long.
pub(crate) fn decimal(out: &mut Vec<u8>, value: i128) {
    let bits = 128 - value.unsigned_abs().leading_zeros() as usize;
    let width = bits / 8 + 1;
    long(out, width as i64);
    out.extend_from_slice(&value.to_be_bytes()[16 - width..]);
}

impl Leaf<'_> {
    fn check(&self, rows: usize) -> Result<(), String> {
        let width = match self.kind {
            STRING => 0,
            BOOLEAN => 1,
            DECIMAL => 16,
            LONG | INT | ENUM | TIMESTAMP | DOUBLE => 8,
            kind => return Err(format!("unknown kind {kind}")),
        };
        let offsets = self.offsets.map_or(0, <[u8]>::len);
        let fits = match self.kind {
            STRING => {
                let at = |i| i64::from_le_bytes(word(self.offsets.unwrap_or(&[]), i));
                offsets == (rows + 1) * 8
                    && at(0) >= 0
                    && (0..rows).all(|i| at(i) <= at(i + 1))
                    && at(rows) as usize <= self.values.len()
            }
            _ => self.values.len() == rows * width,
        };
        if !fits || self.valid.is_some_and(|v| v.len() != rows) {
            return Err(format!(
                "a column's buffers do not hold {rows} rows of kind {}",
                self.kind
            ));
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>, row: usize) {
        if let Some(valid) = self.valid {
            if valid[row] == 0 {
                out.push(0); // the union's branch 0: null
                return;
            }
            out.push(2); // branch 1
        }
        match self.kind {
            STRING => {
                let offsets = self.offsets.unwrap_or(&[]);
                let start = i64::from_le_bytes(word(offsets, row)) as usize;
                let end = i64::from_le_bytes(word(offsets, row + 1)) as usize;
                long(out, (end - start) as i64);
                out.extend_from_slice(&self.values[start..end]);
            }
            BOOLEAN => out.push(self.values[row]),
            DOUBLE => out.extend_from_slice(&word::<8>(self.values, row)),
            DECIMAL => decimal(out, i128::from_le_bytes(word(self.values, row))),
            _ => long(out, i64::from_le_bytes(word(self.values, row))),
        }
    }
}

/// The values of `rows` records, each `header` (magic byte and schema id) and then its body, as a list of bytes.
#[pyfunction]
pub fn encode<'py>(
    py: Python<'py>,
    header: &[u8],
    rows: usize,
    leaves: Vec<ColumnBuffers<'py>>,
) -> PyResult<Bound<'py, PyList>> {
    let leaves: Vec<Leaf> = leaves
        .iter()
        .map(|(kind, valid, values, offsets)| Leaf {
            kind: kind & !OPTIONAL,
            valid: if kind & OPTIONAL != 0 {
                Some(valid.as_ref().map_or(&[][..], |v| v.as_bytes()))
            } else {
                None
            },
            values: values.as_bytes(),
            offsets: offsets.as_ref().map(|o| o.as_bytes()),
        })
        .collect();
    for leaf in &leaves {
        leaf.check(rows).map_err(PyValueError::new_err)?;
    }
    let (data, ends) = py.detach(|| {
        let mut data = Vec::with_capacity(rows * (header.len() + 16 * leaves.len()));
        let mut ends = Vec::with_capacity(rows);
        for row in 0..rows {
            data.extend_from_slice(header);
            for leaf in &leaves {
                leaf.write(&mut data, row);
            }
            ends.push(data.len());
        }
        (data, ends)
    });
    let mut start = 0;
    let values = ends.iter().map(|&end| {
        let value = PyBytes::new(py, &data[start..end]);
        start = end;
        value
    });
    PyList::new(py, values)
}
