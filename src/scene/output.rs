//! Output files. Every file is written to a temporary name in its folder and renamed into place,
//! so that an interrupted run never leaves half a file and an earlier complete file stays whole.

use std::io::Write;

use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

use crate::error::DaleError;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DaleError> {
    let name = path
        .file_name()
        .expect("output paths name a file")
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let io = |source| DaleError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// An f32 array as .npy (little-endian, C order), which numpy.load reads.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    npy_bytes_of(shape, data)
}

/// An array of f32 or f64 as .npy (little-endian, C order).
pub fn npy_bytes_of<T: npyz::AutoSerialize + Copy>(shape: &[usize], data: &[T]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy shape {shape:?} does not match {} values",
        data.len()
    );
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()
        .expect("writing to memory cannot fail");
    w.extend(data.iter().copied())
        .expect("writing to memory cannot fail");
    w.finish().expect("writing to memory cannot fail");
    bytes
}

/// Writes each (file name, shape, values) as .npy in `out`, atomically; returns the names.
pub fn write_npys(out: &Path, arrays: &[(&str, Vec<usize>, &[f32])]) -> Result<Vec<String>, DaleError> {
    let mut files = Vec::new();
    for (name, shape, data) in arrays {
        write_atomic(&out.join(name), &npy_bytes(shape, data))?;
        files.push(name.to_string());
    }
    Ok(files)
}

pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), DaleError> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Makes `dir` (and parents) and proves it writable before any work starts.
pub fn prepare_dir(dir: &Path) -> Result<PathBuf, DaleError> {
    let io = |source| DaleError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let probe = dir.join(".dale-write-test");
    std::fs::write(&probe, b"").map_err(io)?;
    std::fs::remove_file(&probe).map_err(io)?;
    Ok(dir.to_path_buf())
}
