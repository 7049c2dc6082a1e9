//! Image patches for paper 000's dictionary (Fig. 2c): Fashion-MNIST as Debian's
//! dataset-fashion-mnist installs it (gzipped IDX files). The header's sizes are checked against
//! what is read, and only the images needed are decompressed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use nalgebra::DMatrix;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::DaleError;

/// Images read at most: enough patches for any dictionary, a bounded read.
const MOST_IMAGES: usize = 4096;

fn input_err(file: &Path, message: impl Into<String>) -> DaleError {
    DaleError::Input {
        file: file.to_path_buf(),
        array: "images".into(),
        message: message.into(),
    }
}

/// The first images of an IDX3 file (magic 0x803, then count, rows and columns as big-endian
/// u32): (pixels of each, rows, cols).
fn read_idx_images(file: &Path, most: usize) -> Result<(Vec<Vec<u8>>, usize, usize), DaleError> {
    let f = File::open(file).map_err(|source| DaleError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let mut r = GzDecoder::new(BufReader::new(f));
    let mut header = [0u8; 16];
    r.read_exact(&mut header)
        .map_err(|e| input_err(file, format!("no IDX header: {e}")))?;
    let word = |k: usize| u32::from_be_bytes(header[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    if word(0) != 0x803 {
        return Err(input_err(
            file,
            format!("magic {:#x}; allowed: 0x803 (IDX3, u8 images)", word(0)),
        ));
    }
    let (count, rows, cols) = (word(1), word(2), word(3));
    if rows == 0 || cols == 0 || rows > 1024 || cols > 1024 {
        return Err(input_err(
            file,
            format!("images of {rows} x {cols}; allowed: 1 to 1024 a side"),
        ));
    }
    let mut images = Vec::new();
    for k in 0..count.min(most) {
        let mut image = vec![0u8; rows * cols];
        r.read_exact(&mut image)
            .map_err(|e| input_err(file, format!("image {k} of the {count} declared: {e}")))?;
        images.push(image);
    }
    Ok((images, rows, cols))
}

/// `count` patches of size x size from the training (or test) images under `dir`, at positions
/// drawn by `seed`, each with its mean removed and scaled to unit norm, as the columns of a
/// [size^2, count] matrix. Patches of nearly uniform pixels (background) are passed over.
pub fn image_patches(
    dir: &str,
    train: bool,
    count: usize,
    size: usize,
    seed: u64,
) -> Result<DMatrix<f64>, DaleError> {
    let name = if train {
        "train-images-idx3-ubyte.gz"
    } else {
        "t10k-images-idx3-ubyte.gz"
    };
    let file = Path::new(dir).join(name);
    if !file.exists() {
        return Err(input_err(
            &file,
            "missing; install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or give params.dictionary a .npy [pixels, atoms]",
        ));
    }
    let (images, rows, cols) = read_idx_images(&file, MOST_IMAGES)?;
    if size > rows || size > cols || images.is_empty() {
        return Err(input_err(
            &file,
            format!(
                "{} images of {rows} x {cols}; patches of {size} need larger ones",
                images.len()
            ),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut patches = DMatrix::<f64>::zeros(size * size, count);
    let (mut found, mut tries) = (0, 0);
    while found < count {
        tries += 1;
        if tries > 1000 * count.max(1) {
            return Err(input_err(&file, "too few patches with contrast"));
        }
        let image = &images[rng.random_range(0..images.len())];
        let (top, left) = (
            rng.random_range(0..=rows - size),
            rng.random_range(0..=cols - size),
        );
        let mut patch: Vec<f64> = (0..size * size)
            .map(|k| f64::from(image[(top + k / size) * cols + left + k % size]))
            .collect();
        let mean = patch.iter().sum::<f64>() / patch.len() as f64;
        patch.iter_mut().for_each(|v| *v -= mean);
        let norm = patch.iter().map(|v| v * v).sum::<f64>().sqrt();
        // Under ~10 grey levels of sd per pixel the patch is background.
        if norm < 10.0 * size as f64 {
            continue;
        }
        for (k, v) in patch.iter().enumerate() {
            patches[(k, found)] = v / norm;
        }
        found += 1;
    }
    Ok(patches)
}
