//! How feed files come packed: gzip, xz, bzip2 and zstd compression (recognised by their
//! magic bytes, never by name) and tar archives, read as streams so that an archive of
//! thousands of documents (Red Hat's bulk VEX `.tar.zst`, SUSE's `csaf-vex.tar.bz2`)
//! never sits in memory whole: only one entry at a time, each at most
//! [`super::MAX_ENTRY_BYTES`].

use std::io::{self, Cursor, Read, Write};

/// A compression recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// gzip (`1f 8b`), several members read as one stream.
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// bzip2 (`BZh`), several streams read as one.
    Bzip2,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Packing {
    /// The compression `head` (a file's first bytes) starts with.
    pub fn of(head: &[u8]) -> Option<Packing> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Packing::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Packing::Xz)
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
        {
            Some(Packing::Bzip2)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Packing::Zstd)
        } else {
            None
        }
    }

    /// The name of the compression, in messages.
    pub fn name(self) -> &'static str {
        match self {
            Packing::Gzip => "gzip",
            Packing::Xz => "xz",
            Packing::Bzip2 => "bzip2",
            Packing::Zstd => "zstd",
        }
    }

    /// The file name without this compression's extension (`cve-1.json.xz` →
    /// `cve-1.json`), so that the inner document is named as the vendor named it.
    pub fn inner_name(self, name: &str) -> String {
        let exts: &[&str] = match self {
            Packing::Gzip => &[".gz", ".tgz"],
            Packing::Xz => &[".xz", ".txz"],
            Packing::Bzip2 => &[".bz2", ".tbz2"],
            Packing::Zstd => &[".zst", ".zstd"],
        };
        for ext in exts {
            if let Some(stem) = name.strip_suffix(ext) {
                return if ext.starts_with(".t") {
                    format!("{stem}.tar")
                } else {
                    stem.to_string()
                };
            }
        }
        name.to_string()
    }

    /// A reader of the uncompressed bytes. xz is decoded whole first (the pure-Rust
    /// decoder has no streaming reader), at most `limit` bytes of it.
    pub fn unpack<'a>(self, r: Box<dyn Read + 'a>, limit: u64) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Packing::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Packing::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
            Packing::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(r)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
            Packing::Xz => {
                let mut out = Limited {
                    buf: Vec::new(),
                    limit,
                };
                lzma_rs::xz_decompress(&mut io::BufReader::new(r), &mut out)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                Box::new(Cursor::new(out.buf))
            }
        })
    }
}

/// A `Vec` writer that refuses to grow past `limit` bytes (a decompression bomb).
struct Limited {
    buf: Vec<u8>,
    limit: u64,
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {} MiB uncompressed", self.limit >> 20),
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `head` (at least 262 bytes of it) is a POSIX tar header (`ustar` at 257).
pub fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// Reads up to `n` bytes of `r` and gives them back with a reader of the whole stream
/// (the bytes read, then the rest).
pub fn peek<'a>(mut r: Box<dyn Read + 'a>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read + 'a>)> {
    let mut head = Vec::with_capacity(n);
    (&mut r).take(n as u64).read_to_end(&mut head)?;
    let rest: Box<dyn Read + 'a> = Box::new(Cursor::new(head.clone()).chain(r));
    Ok((head, rest))
}

/// All of `r`, or `None` when it holds more than `limit` bytes.
pub fn read_limited(r: &mut dyn Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let n = r.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((n as u64 <= limit).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognised_by_magic_not_name() {
        assert_eq!(Packing::of(&[0x1f, 0x8b, 8]), Some(Packing::Gzip));
        assert_eq!(Packing::of(b"\xfd7zXZ\0rest"), Some(Packing::Xz));
        assert_eq!(Packing::of(b"BZh91AY"), Some(Packing::Bzip2));
        assert_eq!(Packing::of(b"BZhx"), None);
        assert_eq!(
            Packing::of(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Packing::Zstd)
        );
        assert_eq!(Packing::of(b"{\"id\""), None);
        assert_eq!(Packing::Xz.inner_name("a/cve-1.json.xz"), "a/cve-1.json");
        assert_eq!(Packing::Gzip.inner_name("x.tgz"), "x.tar");
        assert_eq!(Packing::Zstd.inner_name("noext"), "noext");
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        let mut r = Packing::Gzip
            .unpack(Box::new(Cursor::new(gz)), 1 << 20)
            .unwrap();
        assert_eq!(read_limited(&mut r, 10_000).unwrap().unwrap().len(), 10_000);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![b'a'; 10_001]).unwrap();
        let gz = enc.finish().unwrap();
        let mut r = Packing::Gzip
            .unpack(Box::new(Cursor::new(gz)), 1 << 20)
            .unwrap();
        assert_eq!(read_limited(&mut r, 10_000).unwrap(), None);
    }

    #[test]
    fn peek_gives_everything_back() {
        let (head, mut all) = peek(Box::new(Cursor::new(b"hello world".to_vec())), 5).unwrap();
        assert_eq!(head, b"hello");
        let mut s = String::new();
        all.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
    }
}
