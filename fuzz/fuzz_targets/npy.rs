//! A .npy file of any bytes: dale reads it or says why not; it never panics, aborts, or
//! allocates beyond what the bytes can hold (run with -malloc_limit_mb, see .ci/fuzz).
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = dale::scene::arrays::read_npy(
        Cursor::new(bytes),
        bytes.len() as u64,
        Path::new("fuzz.npy"),
        "fuzz",
    );
});
