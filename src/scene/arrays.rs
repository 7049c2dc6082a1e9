//! Weight arrays from the user: `file.npy`, or `file.npz:name` for one array of an archive, f32 or
//! f64, C or Fortran order. Every problem is an error naming the file, the array and what was
//! expected; non-finite values are named by their index.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use npyz::{DType, Endianness, NpyFile, Order, TypeChar};

use crate::error::DaleError;
use crate::host::zeroed_vec;

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
            let f = File::open(&file).map_err(|source| DaleError::Read {
                path: file.clone(),
                source,
            })?;
            let npy = NpyFile::new(BufReader::new(f))
                .map_err(|e| input_err(&file, &name, format!("not a .npy file: {e}")))?;
            decode(npy, &file, &name)
        }
    }
}

/// Every array of an .npz archive.
pub fn read_npz(file: &Path) -> Result<Vec<Array>, DaleError> {
    let mut archive = npyz::npz::NpzArchive::open(file)
        .map_err(|e| input_err(file, "", format!("not an .npz archive: {e}")))?;
    let names: Vec<String> = archive.array_names().map(str::to_string).collect();
    let mut out = Vec::new();
    for name in names {
        let npy = archive
            .by_name(&name)
            .map_err(|e| input_err(file, &name, format!("unreadable: {e}")))?
            .ok_or_else(|| input_err(file, &name, "listed but missing"))?;
        out.push(decode(npy, file, &name)?);
    }
    Ok(out)
}

fn decode<R: std::io::Read>(npy: NpyFile<R>, file: &Path, name: &str) -> Result<Array, DaleError> {
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = match npy.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4 => Dtype::F32,
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 8 => Dtype::F64,
        other => {
            return Err(input_err(
                file,
                name,
                format!("dtype {}; allowed: float32 or float64", other.descr()),
            ))
        }
    };
    let bad = |e: std::io::Error| input_err(file, name, format!("unreadable data: {e}"));
    let data: Vec<f32> = match dtype {
        Dtype::F32 => values::<f32, R>(npy).map_err(bad)?,
        Dtype::F64 => values::<f64, R>(npy)
            .map_err(bad)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    };
    let data = if order == Order::Fortran && shape.len() > 1 {
        to_c_order(&shape, &data)
    } else {
        data
    };
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

/// The values of `npy`. Little-endian ones (numpy's default) on a little-endian machine are read
/// straight into memory; element by element is ~10x slower for the 1 GiB arrays of N = 16384.
fn values<T: npyz::Deserialize + bytemuck::Pod, R: Read>(
    npy: NpyFile<R>,
) -> std::io::Result<Vec<T>> {
    let native = cfg!(target_endian = "little")
        && matches!(npy.dtype(), DType::Plain(t) if t.endianness() == Endianness::Little);
    if !native {
        return npy.into_vec();
    }
    let mut v = zeroed_vec(npy.len() as usize);
    npy.into_inner()
        .read_exact(bytemuck::cast_slice_mut(&mut v))?;
    Ok(v)
}

/// Fortran-ordered values (first index fastest) rearranged into C order (last index fastest),
/// walking the C-order multi-index like an odometer.
fn to_c_order(shape: &[usize], data: &[f32]) -> Vec<f32> {
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
