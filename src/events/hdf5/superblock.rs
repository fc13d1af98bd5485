//! A look at the superblock before libhdf5 opens the file. The `hdf5` fuzz target found that
//! libhdf5 grows a buffer without bound (gigabytes, from a 31-byte file) when the superblock
//! declares 2-byte addresses; no event writer makes such files (h5py, DSEC and evlib write
//! 8-byte addresses and lengths), so anything but 4 or 8 bytes is refused here, with the offset.

use std::io::{Read, Seek, SeekFrom};

use super::MAGIC;

/// Where libhdf5 looks for the signature: 0, then 512, 1024, 2048, ... (after a user block).
const FIRST_USER_BLOCK: u64 = 512;

/// Checks the address and length sizes of the first superblock found. A file without the
/// signature is left to libhdf5, which says so in its own words.
pub fn check(path: &str) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut at = 0u64;
    while at + 16 <= len {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(&mut head)).map_err(|e| e.to_string())?;
        if &head[..8] == MAGIC {
            return sizes(&head, at);
        }
        at = if at == 0 { FIRST_USER_BLOCK } else { at * 2 };
    }
    Ok(())
}

/// The superblock's version byte and where its two size bytes sit (format spec, part II.A).
fn sizes(head: &[u8; 16], at: u64) -> Result<(), String> {
    let (offsets, lengths) = match head[8] {
        0 | 1 => (13, 14),
        2 | 3 => (9, 10),
        // Newer versions are libhdf5's to judge.
        _ => return Ok(()),
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
    Ok(())
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
        assert!(sizes(&head(0, 8, 8), 0).is_ok());
        assert!(sizes(&head(2, 4, 8), 0).is_ok());
        let e = sizes(&head(0, 2, 2), 512).unwrap_err();
        assert!(e.contains("byte 512") && e.contains("addresses of 2 bytes at offset 525"), "{e}");
        assert!(sizes(&head(3, 8, 2), 0).unwrap_err().contains("lengths of 2 bytes at offset 10"));
    }
}
