//! Output files. Every file is written to a temporary name in its folder and renamed into place,
//! so that an interrupted run never leaves half a file and an earlier complete file stays whole.

use std::io::Write;

use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

use crate::error::DaleError;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DaleError> {
    write_atomic_parts(path, &[bytes])
}

/// `parts` one after another, as one file, written as `write_atomic` writes.
fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<(), DaleError> {
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
    for part in parts {
        f.write_all(part).map_err(io)?;
    }
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

// .npy data is written as the values' bytes in memory, which are little-endian only there.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "dale writes .npy files on little-endian machines only"
);

/// An array of f32 or f64 as .npy (little-endian, C order), which numpy.load reads: npyz's
/// header, then the values' bytes as they are in memory (element by element would be ~10x slower
/// for the 1 GiB arrays of N = 16384).
pub fn write_npy<T: npyz::AutoSerialize + bytemuck::Pod>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), DaleError> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy shape {shape:?} does not match {} values",
        data.len()
    );
    let mut header = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut header)
        .write_header_only()
        .expect("writing to memory cannot fail");
    write_atomic_parts(path, &[&header, bytemuck::cast_slice(data)])
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
