//! Weight arrays from the user: `file.npy`, or `file.npz:name` for one array of an archive, f32 or
//! f64, C or Fortran order; and sparse matrices as scipy.sparse.save_npz writes them (CSR), whose
//! integer arrays are read exactly. Every problem is an error naming the file, the array and what
//! was expected; non-finite values are named by their index. A declared size is checked against
//! the data the file holds and the machine's memory before anything is allocated (issue 23).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::error::DaleError;
use crate::host::{memory_bytes, try_zeroed_vec};

/// The element type an array came in, so that results go back in the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

/// An array in C order, as f32 (dale's precision), with where it came from.
#[derive(Clone, Debug)]
pub struct Array {
    pub file: PathBuf,
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data: Vec<f32>,
}

fn input_err(file: &Path, name: &str, message: impl Into<String>) -> DaleError {
    DaleError::Input {
        file: file.to_path_buf(),
        array: name.to_string(),
        message: message.into(),
    }
}

/// Reads `spec`: `path.npy` or `path.npz:name`.
pub fn read_array(spec: &str) -> Result<Array, DaleError> {
    match spec.rsplit_once(".npz:") {
        Some((stem, name)) => {
            let file = PathBuf::from(format!("{stem}.npz"));
            read_npz(&file)?
                .into_iter()
                .find(|a| a.name == name)
                .ok_or_else(|| input_err(&file, name, "no array of that name in the archive"))
        }
        None => {
            let file = PathBuf::from(spec);
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let read_err = |source| DaleError::Read {
                path: file.clone(),
                source,
            };
            let f = File::open(&file).map_err(read_err)?;
            let file_len = f.metadata().map_err(read_err)?.len();
            read_npy(BufReader::new(f), file_len, &file, &name)
        }
    }
}

/// A .npy file's array from `r`, which holds `len` bytes in all; `file` and `name` label errors.
/// The fuzz targets (fuzz/) call it on bytes.
pub fn read_npy(
    mut r: impl Read + Seek,
    len: u64,
    file: &Path,
    name: &str,
) -> Result<Array, DaleError> {
    let header = read_header(&mut r, file, name)?;
    let at = r.stream_position().map_err(|source| DaleError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    header.check_holds(len.saturating_sub(at), "the file", file, name)?;
    decode(&mut r, header, true, file, name)
}

fn open_npz(file: &Path) -> Result<BufReader<File>, DaleError> {
    let f = File::open(file).map_err(|source| DaleError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(BufReader::new(f))
}

/// Every array of an .npz archive (a zip of .npy files, stored or deflated).
pub fn read_npz(file: &Path) -> Result<Vec<Array>, DaleError> {
    read_npz_from(open_npz(file)?, file)
}

/// `read_npz` of an archive in `r`; `file` labels errors. The fuzz targets call it on bytes.
pub fn read_npz_from(r: impl Read + Seek, file: &Path) -> Result<Vec<Array>, DaleError> {
    let mut out = Vec::new();
    each_npz_entry(r, file, |entry, header, stored, name| {
        out.push(decode(entry, header, stored, file, name)?);
        Ok(())
    })?;
    Ok(out)
}

/// A sparse matrix as scipy.sparse.save_npz writes a csr_matrix: row r's column indices are
/// indices[indptr[r] .. indptr[r + 1]], its values data[..] of the same range.
#[derive(Clone, Debug)]
pub struct CsrFile {
    pub file: PathBuf,
    pub shape: [usize; 2],
    pub indptr: Vec<i64>,
    pub indices: Vec<i64>,
    pub data: Vec<f32>,
}

/// Reads a CSR matrix from an .npz of scipy.sparse.save_npz: its `format` must say csr, `shape`
/// hold two dimensions; `indptr` and `indices` are integers of any width, `data` float32 or
/// float64. Their consistency (pointers, index ranges) is the caller's to check.
pub fn read_csr(file: &Path) -> Result<CsrFile, DaleError> {
    read_csr_from(open_npz(file)?, file)
}

/// `read_csr` of an archive in `r`; `file` labels errors.
pub fn read_csr_from(r: impl Read + Seek, file: &Path) -> Result<CsrFile, DaleError> {
    let (mut indptr, mut indices, mut data, mut shape, mut format) = (None, None, None, None, None);
    each_npz_entry(r, file, |entry, header, stored, name| {
        match name {
            "indptr" => indptr = Some(decode_ints(entry, header, stored, file, name)?),
            "indices" => indices = Some(decode_ints(entry, header, stored, file, name)?),
            "shape" => shape = Some(decode_ints(entry, header, stored, file, name)?),
            "data" => data = Some(decode(entry, header, stored, file, name)?.data),
            "format" => format = Some(decode_text(entry, header, file, name)?),
            _ => {}
        }
        Ok(())
    })?;
    let missing = |what: &str| {
        input_err(
            file,
            what,
            "no such array; a CSR matrix as scipy.sparse.save_npz writes it holds indptr, \
             indices, data, shape and format",
        )
    };
    let format = format.ok_or_else(|| missing("format"))?;
    if format != "csr" {
        return Err(input_err(
            file,
            "format",
            format!("{format:?}; allowed: \"csr\" (convert with .tocsr() before save_npz)"),
        ));
    }
    let shape = shape.ok_or_else(|| missing("shape"))?;
    let shape = match shape.as_slice() {
        &[rows, cols] if rows >= 0 && cols >= 0 => [rows as usize, cols as usize],
        other => {
            return Err(input_err(
                file,
                "shape",
                format!("{other:?}; allowed: two non-negative dimensions"),
            ))
        }
    };
    Ok(CsrFile {
        file: file.to_path_buf(),
        shape,
        indptr: indptr.ok_or_else(|| missing("indptr"))?,
        indices: indices.ok_or_else(|| missing("indices"))?,
        data: data.ok_or_else(|| missing("data"))?,
    })
}

/// Calls `f` with each .npy entry of the archive in `r` (its reader, checked header, whether it
/// is stored rather than deflated, and its name), after checking that the entry can hold what
/// its header declares.
fn each_npz_entry(
    r: impl Read + Seek,
    file: &Path,
    mut f: impl FnMut(&mut dyn Read, Header, bool, &str) -> Result<(), DaleError>,
) -> Result<(), DaleError> {
    let mut zip = zip::ZipArchive::new(r)
        .map_err(|e| input_err(file, "", format!("not an .npz archive: {e}")))?;
    for k in 0..zip.len() {
        let mut entry = zip
            .by_index(k)
            .map_err(|e| input_err(file, "", format!("entry {k} unreadable: {e}")))?;
        let entry_name = entry
            .name()
            .map_err(|e| input_err(file, "", format!("entry {k} has no readable name: {e}")))?
            .into_owned();
        let Some(name) = entry_name.strip_suffix(".npy").map(str::to_string) else {
            continue; // numpy.load skips what is not an array too
        };
        let header = read_header(&mut entry, file, &name)?;
        // A stored entry's size is known; a deflated one's is only declared, so its values are
        // read as they arrive (`decode` with `whole` false).
        let stored = entry.compression() == zip::CompressionMethod::Stored;
        if stored {
            let data_bytes = entry.size().saturating_sub(header.header_bytes);
            header.check_holds(data_bytes, "the archive entry", file, &name)?;
        } else {
            header.check_holds(u64::MAX, "", file, &name)?;
        }
        f(&mut entry, header, stored, &name)?;
    }
    Ok(())
}

/// numpy's own limit on the length of a .npy header (`max_header_size` of numpy.lib.format); a
/// longer one is refused before it is read.
const MAX_HEADER: usize = 10_000;

/// What a .npy's values are: dale's arrays are floats; CSR pointers and indices integers; an
/// .npz's `format` a byte string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    Float(Dtype),
    Int { bytes: usize, signed: bool },
    Text(usize),
}

/// What a .npy header declares.
#[derive(Debug)]
struct Header {
    element: Element,
    /// The dtype as the header spells it, for messages.
    descr: String,
    little_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    /// Values: the product of the shape.
    len: usize,
    /// Bytes from the start of the .npy to its data.
    header_bytes: u64,
}

impl Header {
    fn value_bytes(&self) -> u64 {
        match self.element {
            Element::Float(Dtype::F32) => 4,
            Element::Float(Dtype::F64) => 8,
            Element::Int { bytes, .. } | Element::Text(bytes) => bytes as u64,
        }
    }

    fn describe(&self) -> String {
        let dtype = match self.element {
            Element::Float(Dtype::F32) => "float32".to_string(),
            Element::Float(Dtype::F64) => "float64".to_string(),
            Element::Int { bytes, signed } => {
                format!("{}int{}", if signed { "" } else { "u" }, 8 * bytes)
            }
            Element::Text(bytes) => format!("bytes{bytes}"),
        };
        format!("shape {:?} {dtype}", self.shape)
    }

    /// Refuses a declared size that the data (`data_bytes` of `what`) cannot hold, or that dale's
    /// f32 copy would not fit in the machine's memory, before anything is allocated.
    fn check_holds(
        &self,
        data_bytes: u64,
        what: &str,
        file: &Path,
        name: &str,
    ) -> Result<(), DaleError> {
        let declared = self.len as u64 * self.value_bytes();
        if declared > data_bytes {
            return Err(input_err(
                file,
                name,
                format!(
                    "{} declares {declared} bytes of data, but {what} holds {data_bytes} after \
                     the header (truncated, or not what it says)",
                    self.describe()
                ),
            ));
        }
        // Floats are read as f32, integers as i64.
        let read_bytes = self.len as u64
            * if matches!(self.element, Element::Int { .. }) {
                8
            } else {
                4
            };
        if let Some(memory) = memory_bytes().filter(|&m| read_bytes > m) {
            return Err(input_err(
                file,
                name,
                format!(
                    "{} needs {read_bytes} bytes once read (dale computes in float32, indices in \
                     int64), more than this machine's memory ({memory} bytes)",
                    self.describe()
                ),
            ));
        }
        Ok(())
    }
}

/// Reads and checks a .npy header (format versions 1 to 3): the magic string, a header length
/// within MAX_HEADER, and a dict with exactly 'descr' (a float, an integer of 1 to 8 bytes or a
/// byte string, either byte order),
/// 'fortran_order' and 'shape' (non-negative integers whose product fits in memory's address
/// space). Written here rather than taken from npyz, which allocates whatever length a header
/// declares before reading it.
fn read_header(r: &mut impl Read, file: &Path, name: &str) -> Result<Header, DaleError> {
    let bad = |message: String| input_err(file, name, message);
    let eof = |e: std::io::Error| bad(format!("not a .npy file: the header ends early ({e})"));
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(eof)?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file: no \\x93NUMPY magic string".into()));
    }
    let (header_len, pre_len) = match pre[6] {
        1 => {
            let mut n = [0u8; 2];
            r.read_exact(&mut n).map_err(eof)?;
            (u16::from_le_bytes(n) as usize, 10)
        }
        2 | 3 => {
            let mut n = [0u8; 4];
            r.read_exact(&mut n).map_err(eof)?;
            (u32::from_le_bytes(n) as usize, 12)
        }
        v => {
            return Err(bad(format!(
                ".npy format version {v}.{}; allowed: 1.0, 2.0, 3.0",
                pre[7]
            )))
        }
    };
    if header_len > MAX_HEADER {
        return Err(bad(format!(
            "a .npy header of {header_len} bytes; allowed: at most {MAX_HEADER} (numpy's limit)"
        )));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text).map_err(eof)?;
    let text =
        std::str::from_utf8(&text).map_err(|_| bad("the .npy header is not UTF-8 text".into()))?;
    let dict = parse_header_dict(text).map_err(|e| bad(format!("the .npy header: {e}")))?;
    let descr = dict.descr.as_str();
    let unknown = || bad(format!("dtype {descr}; allowed: float32 or float64"));
    let (&order, kind) = descr.as_bytes().split_first().ok_or_else(unknown)?;
    let little_endian = match order {
        b'<' | b'|' => true,
        b'>' => false,
        b'=' => cfg!(target_endian = "little"),
        _ => return Err(unknown()),
    };
    let element = match kind {
        b"f4" => Element::Float(Dtype::F32),
        b"f8" => Element::Float(Dtype::F64),
        [sign @ (b'i' | b'u'), size @ (b'1' | b'2' | b'4' | b'8')] => Element::Int {
            bytes: usize::from(size - b'0'),
            signed: *sign == b'i',
        },
        [b'S', digits @ ..] => match std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
        {
            Some(bytes @ 1..=MAX_TEXT) => Element::Text(bytes),
            _ => return Err(unknown()),
        },
        _ => return Err(unknown()),
    };
    let len = dict
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len.checked_mul(8).is_some())
        .ok_or_else(|| {
            bad(format!(
                "shape {:?} holds more values than this machine can address",
                dict.shape
            ))
        })?;
    Ok(Header {
        element,
        descr: descr.to_string(),
        little_endian,
        fortran_order: dict.fortran_order,
        shape: dict.shape,
        len,
        header_bytes: (pre_len + header_len) as u64,
    })
}

struct HeaderDict {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// The header's Python dict literal, as numpy writes it:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` (lists and double quotes too).
fn parse_header_dict(text: &str) -> Result<HeaderDict, String> {
    let mut t = Tokens {
        rest: text.trim_end_matches(['\n', ' ', '\0']),
    };
    t.expect('{')?;
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    while !t.eat('}') {
        let key = t.string()?;
        t.expect(':')?;
        match key.as_str() {
            "descr" => descr = Some(t.string().map_err(|_| "'descr' is not a plain dtype string (a structured dtype?); allowed: float32 or float64".to_string())?),
            "fortran_order" => fortran_order = Some(t.boolean()?),
            "shape" => shape = Some(t.shape()?),
            other => return Err(format!("unexpected key '{other}'")),
        }
        if !t.eat(',') {
            t.expect('}')?;
            break;
        }
    }
    if !t.rest.trim().is_empty() {
        return Err(format!("text after the dict: {:?}", t.rest.trim()));
    }
    Ok(HeaderDict {
        descr: descr.ok_or("no 'descr'")?,
        fortran_order: fortran_order.ok_or("no 'fortran_order'")?,
        shape: shape.ok_or("no 'shape'")?,
    })
}

/// A cursor over the header text, skipping spaces.
struct Tokens<'a> {
    rest: &'a str,
}

impl Tokens<'_> {
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}' at {:?}", self.snippet()))
        }
    }

    fn snippet(&self) -> String {
        self.rest.chars().take(20).collect()
    }

    fn string(&mut self) -> Result<String, String> {
        self.rest = self.rest.trim_start();
        let quote = self
            .rest
            .chars()
            .next()
            .filter(|q| *q == '\'' || *q == '"')
            .ok_or_else(|| format!("expected a string at {:?}", self.snippet()))?;
        let body = &self.rest[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| "a string without its closing quote".to_string())?;
        self.rest = &body[end + 1..];
        Ok(body[..end].to_string())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        for (word, value) in [("True", true), ("False", false)] {
            self.rest = self.rest.trim_start();
            if let Some(r) = self.rest.strip_prefix(word) {
                self.rest = r;
                return Ok(value);
            }
        }
        Err(format!("expected True or False at {:?}", self.snippet()))
    }

    /// A tuple or list of non-negative integers.
    fn shape(&mut self) -> Result<Vec<usize>, String> {
        let close = if self.eat('(') {
            ')'
        } else if self.eat('[') {
            ']'
        } else {
            return Err(format!("expected a shape tuple at {:?}", self.snippet()));
        };
        let mut dims = Vec::new();
        while !self.eat(close) {
            self.rest = self.rest.trim_start();
            let digits = self.rest.len()
                - self
                    .rest
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            if digits == 0 {
                return Err(format!("expected a dimension at {:?}", self.snippet()));
            }
            let dim = self.rest[..digits]
                .parse::<usize>()
                .map_err(|_| format!("dimension {} is too large", &self.rest[..digits]))?;
            self.rest = &self.rest[digits..];
            dims.push(dim);
            if !self.eat(',') {
                self.expect(close)?;
                break;
            }
        }
        Ok(dims)
    }
}

/// Reads the data a header describes, as f32 in C order, and refuses non-finite values. With
/// `whole` (the data is known to be all there) one allocation takes it; otherwise it grows as
/// the data arrives, a chunk at a time, so that a declared size the data does not back costs no
/// more than the data.
fn decode(
    r: &mut (impl Read + ?Sized),
    header: Header,
    whole: bool,
    file: &Path,
    name: &str,
) -> Result<Array, DaleError> {
    let Element::Float(dtype) = header.element else {
        return Err(input_err(
            file,
            name,
            format!("dtype {}; allowed: float32 or float64", header.descr),
        ));
    };
    let (shape, data) = decode_values::<f32>(r, header, whole, file, name)?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        let why = if dtype == Dtype::F64 {
            "is not finite (or beyond the f32 range dale computes in)"
        } else {
            "is not finite"
        };
        return Err(input_err(
            file,
            name,
            format!("the value at index {:?} {why}", unravel(&shape, i)),
        ));
    }
    Ok(Array {
        file: file.to_path_buf(),
        name: name.to_string(),
        shape,
        dtype,
        data,
    })
}

/// An integer array's values, exactly (unsigned ones beyond i64 saturate).
fn decode_ints(
    r: &mut (impl Read + ?Sized),
    header: Header,
    whole: bool,
    file: &Path,
    name: &str,
) -> Result<Vec<i64>, DaleError> {
    if !matches!(header.element, Element::Int { .. }) {
        return Err(input_err(
            file,
            name,
            format!("dtype {}; allowed: an integer type", header.descr),
        ));
    }
    Ok(decode_values::<i64>(r, header, whole, file, name)?.1)
}

/// Longest byte string read (an .npz's `format` holds three).
const MAX_TEXT: usize = 64;

/// A byte string of one element (numpy's array(b'csr')), as text.
fn decode_text(
    r: &mut (impl Read + ?Sized),
    header: Header,
    file: &Path,
    name: &str,
) -> Result<String, DaleError> {
    let (Element::Text(bytes), 1) = (header.element, header.len) else {
        return Err(input_err(
            file,
            name,
            format!(
                "{} ({}); allowed: one byte string",
                header.describe(),
                header.descr
            ),
        ));
    };
    let mut text = vec![0u8; bytes];
    r.read_exact(&mut text)
        .map_err(|e| input_err(file, name, format!("the data ends early ({e})")))?;
    let text = text.split(|b| *b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// The values a header describes, in C order, and their shape.
fn decode_values<T: Value>(
    r: &mut (impl Read + ?Sized),
    header: Header,
    whole: bool,
    file: &Path,
    name: &str,
) -> Result<(Vec<usize>, Vec<T>), DaleError> {
    let out = if whole {
        try_zeroed_vec(header.len).ok_or_else(|| {
            input_err(
                file,
                name,
                format!("{}: no memory left for its values", header.describe()),
            )
        })?
    } else {
        Vec::new()
    };
    let data = read_values(r, &header, out).map_err(|e| {
        input_err(
            file,
            name,
            format!(
                "{}: the data ends before its {} values ({e})",
                header.describe(),
                header.len
            ),
        )
    })?;
    let shape = header.shape;
    let data = if header.fortran_order && shape.len() > 1 {
        to_c_order(&shape, &data)
    } else {
        data
    };
    Ok((shape, data))
}

/// A type values are read into.
trait Value: bytemuck::Pod + Default {
    /// Whether the header's bytes are this type's, in this machine's byte order.
    fn native(header: &Header) -> bool;
    /// Values of `bytes` in the header's element type and byte order.
    fn convert(bytes: &[u8], header: &Header, dst: &mut [Self]);
}

impl Value for f32 {
    fn native(header: &Header) -> bool {
        header.element == Element::Float(Dtype::F32)
            && header.little_endian == cfg!(target_endian = "little")
    }

    fn convert(bytes: &[u8], header: &Header, dst: &mut [f32]) {
        let little = header.little_endian;
        match header.element {
            Element::Float(Dtype::F64) => each_value(bytes, dst, |b: [u8; 8]| match little {
                true => f64::from_le_bytes(b) as f32,
                false => f64::from_be_bytes(b) as f32,
            }),
            _ => each_value(bytes, dst, |b: [u8; 4]| match little {
                true => f32::from_le_bytes(b),
                false => f32::from_be_bytes(b),
            }),
        }
    }
}

impl Value for i64 {
    fn native(header: &Header) -> bool {
        header.element
            == (Element::Int {
                bytes: 8,
                signed: true,
            })
            && header.little_endian == cfg!(target_endian = "little")
    }

    fn convert(bytes: &[u8], header: &Header, dst: &mut [i64]) {
        let Element::Int {
            bytes: size,
            signed,
        } = header.element
        else {
            unreachable!("decode_ints reads integers only");
        };
        // Widened to 8 bytes in the header's byte order, sign-extended where signed.
        let little = header.little_endian;
        for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(size)) {
            let negative = signed && (if little { b[size - 1] } else { b[0] }) & 0x80 != 0;
            let mut wide = [if negative { 0xff } else { 0 }; 8];
            if little {
                wide[..size].copy_from_slice(b);
                *d = i64::from_le_bytes(wide);
            } else {
                wide[8 - size..].copy_from_slice(b);
                *d = i64::from_be_bytes(wide);
            }
            if !signed && size == 8 && *d < 0 {
                *d = i64::MAX;
            }
        }
    }
}

/// Values per read at most: 4 MiB of f64.
const CHUNK: usize = 1 << 19;
/// Values of the first read where the size is not known to be backed: 32 KiB of f64.
const FIRST_CHUNK: usize = 1 << 12;

/// The header's values as f32. Little-endian f32 (numpy's default) on a little-endian machine
/// is read straight into memory; element by element is ~10x slower for the 1 GiB arrays of
/// N = 16384. `out` holds them all already, or is empty and grows with them: each read then
/// takes at most as many values as have arrived so far, so that what is allocated stays within
/// twice what the data held.
fn read_values<T: Value>(
    r: &mut (impl Read + ?Sized),
    header: &Header,
    mut out: Vec<T>,
) -> std::io::Result<Vec<T>> {
    let native = T::native(header);
    let whole = out.len() == header.len;
    let size = header.value_bytes() as usize;
    let mut raw = Vec::new();
    let mut done = 0;
    while done < header.len {
        let n = if whole {
            CHUNK
        } else {
            done.clamp(FIRST_CHUNK, CHUNK)
        }
        .min(header.len - done);
        if !whole {
            out.resize(done + n, T::default());
        }
        let dst = &mut out[done..done + n];
        if native {
            r.read_exact(bytemuck::cast_slice_mut(dst))?;
        } else {
            raw.resize(n * size, 0);
            r.read_exact(&mut raw)?;
            T::convert(&raw, header, dst);
        }
        done += n;
    }
    Ok(out)
}

/// dst[i] = value(the i-th W bytes).
fn each_value<const W: usize>(bytes: &[u8], dst: &mut [f32], value: impl Fn([u8; W]) -> f32) {
    for (d, b) in dst.iter_mut().zip(bytes.as_chunks::<W>().0) {
        *d = value(*b);
    }
}

/// Fortran-ordered values (first index fastest) rearranged into C order (last index fastest),
/// walking the C-order multi-index like an odometer.
fn to_c_order<T: Copy>(shape: &[usize], data: &[T]) -> Vec<T> {
    // Where each index sits in Fortran order.
    let stride: Vec<usize> = shape
        .iter()
        .scan(1, |acc, &d| Some(std::mem::replace(acc, *acc * d)))
        .collect();
    let mut idx = vec![0; shape.len()];
    let mut f_index = 0;
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        out.push(data[f_index]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            f_index += stride[d];
            if idx[d] < shape[d] {
                break;
            }
            f_index -= idx[d] * stride[d];
            idx[d] = 0;
        }
    }
    out
}

/// The multi-index of flat C-order position `i`.
fn unravel(shape: &[usize], mut i: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d].max(1);
        i /= shape[d].max(1);
    }
    idx
}

/// Checks that `array` has `want` as its shape; `what` says what the shape means.
pub fn expect_shape(array: &Array, want: &[usize], what: &str) -> Result<(), DaleError> {
    if array.shape == want {
        Ok(())
    } else {
        Err(input_err(
            &array.file,
            &array.name,
            format!("shape {:?}; expected {:?} ({what})", array.shape, want),
        ))
    }
}
