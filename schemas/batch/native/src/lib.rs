//! The batch decoder's fast path (`schemas/batch/native.py`): Avro bodies of one writer schema, equal to the reader's,
//! to column buffers in one pass over the records, each record checked as it is read.
//!
//! The schema comes flattened: one op per leaf, depth first (records are only the Python side's business). Every
//! record is read whole or not at all: a malformed one gets the reason the numpy decoder would give it
//! (`schemas/batch/wire.py`, `schemas/batch/container.py` before this) and leaves no trace in the columns.
//! What this reader does not take on — a string that is not UTF-8, a decimal beyond its precision — makes it give
//! the batch back (`None`) to the numpy decoder, which has the rules for those.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

mod encode;
mod ids;
mod records;

const STRING: u8 = 0;
const LONG: u8 = 1;
const INT: u8 = 2;
const BOOLEAN: u8 = 3;
const DOUBLE: u8 = 4;
const TIMESTAMP: u8 = 5;
const DECIMAL: u8 = 6;
const ENUM: u8 = 7;
const OPTIONAL: u8 = 16; // added to a kind: the union ["null", T]

struct Op {
    kind: u8,
    optional: bool,
    label: String,
    arg: i64,    // DECIMAL: precision; ENUM: the number of symbols
    bound: u128, // DECIMAL: 10^precision, the least magnitude beyond it
}

enum Values {
    Bytes { offsets: Vec<i64>, data: Vec<u8> },
    Long(Vec<i64>),
    Int(Vec<i32>),
    Bool(Vec<u8>),
    Double(Vec<f64>),
    Decimal(Vec<i128>),
}

struct Column {
    values: Values,
    valid: Option<Vec<u8>>,
}

impl Column {
    fn new(op: &Op) -> Column {
        let values = match op.kind {
            STRING => Values::Bytes {
                offsets: vec![0],
                data: Vec::new(),
            },
            LONG | TIMESTAMP => Values::Long(Vec::new()),
            INT | ENUM => Values::Int(Vec::new()),
            BOOLEAN => Values::Bool(Vec::new()),
            DOUBLE => Values::Double(Vec::new()),
            DECIMAL => Values::Decimal(Vec::new()),
            _ => unreachable!("kinds are checked in decode"),
        };
        Column {
            values,
            valid: if op.optional { Some(Vec::new()) } else { None },
        }
    }

    /// Back to its first ``rows`` values: a record that failed half-way leaves nothing behind (each good record
    /// added exactly one value to every column).
    fn rollback(&mut self, rows: usize) {
        if let Some(v) = self.valid.as_mut() {
            v.truncate(rows);
        }
        match &mut self.values {
            Values::Bytes { offsets, data } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
            }
            Values::Long(v) => v.truncate(rows),
            Values::Int(v) => v.truncate(rows),
            Values::Bool(v) => v.truncate(rows),
            Values::Double(v) => v.truncate(rows),
            Values::Decimal(v) => v.truncate(rows),
        }
    }

    fn push_null(&mut self) {
        match &mut self.values {
            Values::Bytes { offsets, data } => offsets.push(data.len() as i64),
            Values::Long(v) => v.push(0),
            Values::Int(v) => v.push(0),
            Values::Bool(v) => v.push(0),
            Values::Double(v) => v.push(0.0),
            Values::Decimal(v) => v.push(0),
        }
    }
}

/// Why a record cannot be read: malformed (its reason), or beyond this reader (the batch goes to the numpy decoder).
enum Stop {
    Malformed(String),
    GiveBack,
}

/// ``(record, reason)`` for each malformed record of a batch.
type Reasons = Vec<(usize, String)>;

struct Reader<'a> {
    buf: &'a [u8], // the values end to end, then zero padding
    pos: usize,
    end: usize,
    min_micros: i64,
    max_micros: i64,
}

impl Reader<'_> {
    fn truncated(label: &str) -> Stop {
        Stop::Malformed(format!("truncated: the record ends inside {label}"))
    }

    /// A zig-zag varint, its bytes read as the numpy cursor reads them (past the record's end into what follows).
    fn long(&mut self, label: &str) -> Result<i64, Stop> {
        let limit = self.buf.len() - 1;
        let mut zigzag: u64 = 0;
        let mut width = 0;
        for k in 0..10 {
            let byte = self.buf[(self.pos + k).min(limit)];
            zigzag |= u64::from(byte & 0x7F) << (7 * k);
            if byte & 0x80 == 0 {
                width = k + 1;
                break;
            }
        }
        if width == 0 {
            return Err(Stop::Malformed(format!(
                "{label}: a varint longer than 10 bytes"
            )));
        }
        self.advance(width, label)?;
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    fn advance(&mut self, width: usize, label: &str) -> Result<usize, Stop> {
        let start = self.pos;
        if start + width > self.end {
            return Err(Self::truncated(label));
        }
        self.pos = start + width;
        Ok(start)
    }

    fn blob(&mut self, label: &str) -> Result<&[u8], Stop> {
        let length = self.long(label)?;
        if length < 0 {
            return Err(Stop::Malformed(format!("{label}: negative length")));
        }
        let start = self.advance(length as usize, label)?;
        Ok(&self.buf[start..start + length as usize])
    }

    fn value(&mut self, op: &Op, column: &mut Column) -> Result<(), Stop> {
        let label = op.label.as_str();
        match (&mut column.values, op.kind) {
            (Values::Bytes { offsets, data }, _) => {
                let bytes = self.blob(label)?;
                if std::str::from_utf8(bytes).is_err() {
                    return Err(Stop::GiveBack);
                }
                data.extend_from_slice(bytes);
                offsets.push(data.len() as i64);
            }
            (Values::Long(v), kind) => {
                let value = self.long(label)?;
                if kind == TIMESTAMP && (value < self.min_micros || value > self.max_micros) {
                    return Err(Stop::Malformed(format!("{label}: timestamp out of range")));
                }
                v.push(value);
            }
            (Values::Int(v), kind) => {
                let value = self.long(label)?;
                if kind == ENUM {
                    if value < 0 || value >= op.arg {
                        return Err(Stop::Malformed(format!("{label}: enum index out of range")));
                    }
                } else if i32::try_from(value).is_err() {
                    return Err(Stop::Malformed(format!("{label}: int out of range")));
                }
                v.push(value as i32);
            }
            (Values::Bool(v), _) => {
                let start = self.advance(1, label)?;
                v.push(u8::from(self.buf[start] != 0));
            }
            (Values::Double(v), _) => {
                let start = self.advance(8, label)?;
                v.push(f64::from_le_bytes(
                    self.buf[start..start + 8].try_into().unwrap(),
                ));
            }
            (Values::Decimal(v), _) => {
                let bytes = self.blob(label)?;
                if bytes.len() > 16 {
                    return Err(Stop::Malformed(format!(
                        "{label}: decimal wider than 16 bytes"
                    )));
                }
                // Big-endian two's complement, sign-extended to 128 bits.
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0x00
                };
                let mut wide = [fill; 16];
                wide[16 - bytes.len()..].copy_from_slice(bytes);
                let unscaled = i128::from_be_bytes(wide);
                if unscaled.unsigned_abs() >= op.bound {
                    return Err(Stop::GiveBack);
                }
                v.push(unscaled);
            }
        }
        Ok(())
    }

    fn record(&mut self, ops: &[Op], columns: &mut [Column], name: &str) -> Result<(), Stop> {
        for (op, column) in ops.iter().zip(columns.iter_mut()) {
            if op.optional {
                let branch = self.long(&op.label)?;
                if branch != 0 && branch != 1 {
                    return Err(Stop::Malformed(format!(
                        "{}: union branch out of range",
                        op.label
                    )));
                }
                column.valid.as_mut().unwrap().push(branch as u8);
                if branch == 0 {
                    column.push_null();
                    continue;
                }
            }
            self.value(op, column)?;
        }
        if self.pos < self.end {
            let left = self.end - self.pos;
            return Err(Stop::Malformed(format!(
                "trailing bytes: {left} bytes left after the {name} Avro body"
            )));
        }
        Ok(())
    }
}

fn offsets_of(raw: &[u8]) -> Vec<usize> {
    raw.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect()
}

fn bytes_of<T: Copy>(values: &[T]) -> &[u8] {
    // SAFETY: plain numbers, read as their little-endian bytes (the platforms numpy and Arrow run on here).
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// Read every record into ``columns``: (one byte a record, 1 when read; the malformed ones' reasons), or None if
/// one is beyond this reader.
#[allow(clippy::too_many_arguments)]
fn read_all(
    buf: &[u8],
    starts: &[usize],
    ends: &[usize],
    ops: &[Op],
    columns: &mut [Column],
    name: &str,
    min_micros: i64,
    max_micros: i64,
) -> Option<(Vec<u8>, Reasons)> {
    let mut ok = vec![0u8; starts.len()];
    let mut reasons: Reasons = Vec::new();
    let mut good = 0;
    for (row, (&start, &end)) in starts.iter().zip(ends).enumerate() {
        let mut reader = Reader {
            buf,
            pos: start,
            end,
            min_micros,
            max_micros,
        };
        match reader.record(ops, columns, name) {
            Ok(()) => {
                ok[row] = 1;
                good += 1;
            }
            Err(Stop::GiveBack) => return None,
            Err(Stop::Malformed(reason)) => {
                for column in columns.iter_mut() {
                    column.rollback(good);
                }
                reasons.push((row, reason));
            }
        }
    }
    Some((ok, reasons))
}

/// Decode the bodies at ``starts[i]..ends[i]`` of ``buf`` (both int64 arrays as bytes).
///
/// Returns None when the batch must go to the numpy decoder; else (ok, reasons, columns): one byte per record
/// (1: read), ``(record, reason)`` for each malformed one, and per op (validity or None, values, string offsets or
/// None) holding the good records only.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn decode<'py>(
    py: Python<'py>,
    buf: &[u8],
    starts: &[u8],
    ends: &[u8],
    ops: Vec<(u8, String, i64)>,
    name: &str,
    min_micros: i64,
    max_micros: i64,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let ops: Vec<Op> = ops
        .into_iter()
        .map(|(kind, label, arg)| Op {
            kind: kind & !OPTIONAL,
            optional: kind & OPTIONAL != 0,
            label,
            arg,
            bound: 10u128.saturating_pow(arg.clamp(0, 38) as u32),
        })
        .collect();
    if let Some(op) = ops.iter().find(|op| op.kind > ENUM) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{}: unknown kind {}",
            op.label, op.kind
        )));
    }
    let (starts, ends) = (offsets_of(starts), offsets_of(ends));
    let mut columns: Vec<Column> = ops.iter().map(Column::new).collect();
    let read = py.detach(|| {
        read_all(
            buf,
            &starts,
            &ends,
            &ops,
            &mut columns,
            name,
            min_micros,
            max_micros,
        )
    });
    let Some((ok, reasons)) = read else {
        return Ok(None);
    };
    let out = PyList::empty(py);
    for column in &columns {
        let valid = column.valid.as_ref().map(|v| PyBytes::new(py, v));
        let (values, offsets) = match &column.values {
            Values::Bytes { offsets, data } => (
                PyBytes::new(py, data),
                Some(PyBytes::new(py, bytes_of(offsets))),
            ),
            Values::Long(v) => (PyBytes::new(py, bytes_of(v)), None),
            Values::Int(v) => (PyBytes::new(py, bytes_of(v)), None),
            Values::Bool(v) => (PyBytes::new(py, v), None),
            Values::Double(v) => (PyBytes::new(py, bytes_of(v)), None),
            Values::Decimal(v) => (PyBytes::new(py, bytes_of(v)), None),
        };
        out.append((valid, values, offsets))?;
    }
    Ok(Some(PyTuple::new(
        py,
        [
            PyBytes::new(py, &ok).into_any(),
            reasons.into_pyobject(py)?.into_any(),
            out.into_any(),
        ],
    )?))
}

#[pymodule]
fn tradecore_avro(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode, m)?)?;
    m.add_function(wrap_pyfunction!(ids::uuid5, m)?)?;
    m.add_class::<records::RecordPlan>()?;
    Ok(())
}
