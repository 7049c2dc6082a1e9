//! An .npz archive of any bytes: as fuzz_targets/npy.rs, through the zip reader, as arrays and as
//! a CSR matrix.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = dale::scene::arrays::read_npz_from(Cursor::new(bytes), Path::new("fuzz.npz"));
    // The same archive as a sparse matrix: its integer arrays and byte string too.
    let _ = dale::scene::arrays::read_csr_from(Cursor::new(bytes), Path::new("fuzz.npz"));
});
