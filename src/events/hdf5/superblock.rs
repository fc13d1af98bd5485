//! A look at the superblock before libhdf5 opens the file. The `hdf5` fuzz target found two
//! ways a file of a few dozen bytes makes libhdf5 allocate and zero gigabytes while it opens it:
//! - 2-byte addresses: no event writer makes them (h5py, DSEC and evlib write 8-byte addresses
//!   and lengths), so anything but 4 or 8 bytes is refused;
//! - a driver information block (superblock versions 0 and 1) whose 32-bit size runs past the
//!   end of the file: libhdf5 sizes its read buffer from it before it checks the file's end.

use std::io::{Read, Seek, SeekFrom};

use super::MAGIC;

/// Where libhdf5 looks for the signature: 0, then 512, 1024, 2048, ... (after a user block).
const FIRST_USER_BLOCK: u64 = 512;

/// Checks the first superblock found. A file without the signature is left to libhdf5, which
/// says so in its own words.
pub fn check(path: &str) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut at = 0u64;
    while at + 16 <= len {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(&mut head)).map_err(|e| e.to_string())?;
        if &head[..8] == MAGIC {
            let Some((offsets, _)) = sizes(&head, at)? else { return Ok(()) };
            if head[8] > 1 {
                return Ok(());
            }
            // Versions 0 and 1 name the driver information block's address after the fixed part.
            let fixed = if head[8] == 0 { 24 } else { 28 };
            let addresses = read_padded(&mut file, at + fixed, 4 * offsets as usize)?;
            return driver_info(&mut file, &addresses, offsets as usize, at, len);
        }
        at = if at == 0 { FIRST_USER_BLOCK } else { at * 2 };
    }
    Ok(())
}

/// The superblock's (address, length) sizes for versions 0 to 3 (format spec, part II.A), after
/// checking them; `None` for newer versions, which are libhdf5's to judge.
fn sizes(head: &[u8; 16], at: u64) -> Result<Option<(u8, u8)>, String> {
    let (offsets, lengths) = match head[8] {
        0 | 1 => (13, 14),
        2 | 3 => (9, 10),
        _ => return Ok(None),
    };
    for (i, what) in [(offsets, "addresses"), (lengths, "lengths")] {
        if !matches!(head[i], 4 | 8) {
            return Err(format!(
                "HDF5 superblock at byte {at}: {what} of {} bytes at offset {}, expected 4 or 8",
                head[i],
                at + i as u64
            ));
        }
    }
    Ok(Some((head[offsets], head[lengths])))
}

/// Base, free-space, end-of-file and driver-information addresses follow in that order. The
/// driver block is 16 header bytes (its 32-bit size at byte 4) and that many bytes more.
fn driver_info(file: &mut std::fs::File, addresses: &[u8], size: usize, at: u64, len: u64) -> Result<(), String> {
    let address = |i: usize| {
        let bytes = &addresses[i * size..(i + 1) * size];
        // All ones is the undefined address.
        (!bytes.iter().all(|&b| b == 0xff)).then(|| bytes.iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b)))
    };
    let Some(driver) = address(3) else { return Ok(()) };
    let block = address(0).unwrap_or(at).wrapping_add(driver);
    let header = read_padded(file, block, 8)?;
    let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    match block.checked_add(16 + u64::from(declared)) {
        Some(end) if end <= len => Ok(()),
        _ => Err(format!(
            "HDF5 superblock at byte {at}: driver information block at byte {block} declares \
             {declared} bytes, past the end of the file ({len} bytes)"
        )),
    }
}

/// `n` bytes at `offset`, zeros past the end of the file (as libhdf5 reads them).
fn read_padded(file: &mut std::fs::File, offset: u64, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(n);
    if file.seek(SeekFrom::Start(offset)).is_ok() {
        file.by_ref().take(n as u64).read_to_end(&mut buf).map_err(|e| e.to_string())?;
    }
    buf.resize(n, 0);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: u8, offsets: u8, lengths: u8) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(MAGIC);
        h[8] = version;
        let (o, l) = if version < 2 { (13, 14) } else { (9, 10) };
        h[o] = offsets;
        h[l] = lengths;
        h
    }

    #[test]
    fn eight_and_four_byte_sizes_pass_two_is_refused_with_its_offset() {
        assert_eq!(sizes(&head(0, 8, 8), 0), Ok(Some((8, 8))));
        assert_eq!(sizes(&head(2, 4, 8), 0), Ok(Some((4, 8))));
        let e = sizes(&head(0, 2, 2), 512).unwrap_err();
        assert!(e.contains("byte 512") && e.contains("addresses of 2 bytes at offset 525"), "{e}");
        assert!(sizes(&head(3, 8, 2), 0).unwrap_err().contains("lengths of 2 bytes at offset 10"));
    }
}
