//! The IDX reader on arbitrary bytes, raw and as gzip: an `Idx` or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = vae::data::decode_idx(data, false) {
        assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
    }
    let _ = vae::data::decode_idx(data, true);
});
