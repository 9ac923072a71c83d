//! The import front door: files, directories and zip archives of the real feed formats,
//! turned into one [`FeedBatch`] per feed.
//!
//! * [`osv`]: OSV records (feed `osv`), one per file or one per entry of osv.dev's
//!   per-ecosystem `all.zip`.
//! * [`vex`]: Ubuntu OpenVEX documents (feed `ubuntu-vex`).
//! * [`alpine`]: Alpine secdb, JSON or YAML (feed `alpine-secdb`).
//! * [`debian`]: the Debian Security Tracker formats (feed [`debian::FEED`]).
//! * [`redhat`]: Red Hat CSAF VEX and RHSA documents and the bulk `deletions.csv` (feed
//!   [`redhat::FEED_CSAF`]), Security Data API CVE JSON (feed [`redhat::FEED_API`]).
//! * [`kev`]: CISA's Known Exploited Vulnerabilities catalog (feed [`kev::FEED`]).
//! * [`packing`]: gzip, xz, bzip2, zstd and tar, unpacked by magic bytes.
//! * [`suse`]: SUSE's CSAF VEX documents and advisories (feed [`suse::CSAF_FEED`]) and
//!   OVAL files (feed [`suse::OVAL_FEED`]).
//! * [`updateinfo`]: repositories' `updateinfo.xml`, for [`amazon`] (ALAS, feed
//!   [`amazon::FEED`]) and [`fedora`] (feed [`fedora::FEED`], also Bodhi's JSON).
//! * [`arch`]: the Arch Linux security tracker JSON (feed [`arch::FEED`]).
//!
//! The format is decided by content, never by file name (except Debian's
//! `security-support-*` lists, which are plain text): zip magic `PK\x03\x04`; JSON when
//! the first non-blank byte is `{` or `[`; YAML otherwise. Each JSON or YAML document is
//! then recognised by its shape (see [`detect`]).
//!
//! Invariants:
//!
//! * A malformed **record** inside a known format is a [`Rejected`] (by id, with the
//!   reason) and is skipped; it never aborts the import. So is every bad entry of a zip
//!   archive (unreadable, not JSON/YAML, of no known format, or more than
//!   [`MAX_ENTRY_BYTES`] uncompressed).
//! * A **file** that cannot be read, is not valid JSON/YAML, or is of no known format is
//!   an [`ImportError`] naming it: the caller imports nothing (the store applies a whole
//!   import or none of it).
//! * One batch per feed; within a feed an id appears once: of two records with the same
//!   id the one with the later `modified` is kept, else the one read last. Records are
//!   sorted by id, so the same inputs give the same batches.
//! * Nothing panics on any input, and no input makes the parser allocate more than
//!   [`MAX_ENTRY_BYTES`] per zip entry.

pub mod alpine;
pub mod amazon;
pub mod arch;
mod csaf;
pub mod debian;
pub mod fedora;
pub mod kev;
pub mod osv;
pub mod packing;
pub mod redhat;
pub mod suse;
pub mod updateinfo;
pub mod vex;

mod text;

use text::{decode, xml_root};

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Parsed, Record, Rejected};
use packing::Packing;

/// Largest uncompressed zip or tar entry read (64 MiB); a bigger one is rejected (zip
/// bomb).
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;

/// Largest single document read from a file, compressed or not (1 GiB uncompressed; the
/// Debian tracker JSON is about 80 MB, Red Hat's largest VEX document 23 MB). Archives
/// (zip, tar) are read entry by entry and have no total limit.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;

/// The formats [`ImportError::UnknownFormat`] lists.
const ACCEPTED: &str = "OSV records (JSON, or osv.dev's all.zip), Ubuntu OpenVEX \
     documents, the Debian Security Tracker JSON, vuln-list-debian records, Debian \
     security-support lists, Alpine secdb (JSON or YAML), Red Hat CSAF VEX and RHSA \
     documents, Red Hat Security Data API CVE JSON and the bulk VEX deletions.csv, \
     SUSE CSAF (VEX and advisories) and SUSE OVAL, updateinfo.xml of Amazon Linux (ALAS) \
     and Fedora, Fedora Bodhi updates (JSON), the Arch Linux security tracker JSON, and \
     CISA's Known Exploited Vulnerabilities catalog";

/// Everything one import read for one feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedBatch {
    /// Feed name: `osv`, `ubuntu-vex`, `alpine-secdb`, [`debian::FEED`],
    /// [`amazon::FEED`], [`fedora::FEED`] or [`arch::FEED`].
    pub feed: &'static str,
    /// The feed's records (unique ids, sorted by id) and rejections.
    pub parsed: Parsed,
}

/// Where a long import is, reported after every file and every 1,000 zip entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The file being read (for a zip archive, the archive).
    pub path: PathBuf,
    /// Files finished so far.
    pub files_done: usize,
    /// Files to read in all.
    pub files_total: usize,
    /// JSON/YAML documents read so far (files, zip entries): for OSV, records.
    pub documents: usize,
    /// Records rejected so far.
    pub rejected: usize,
}

/// Why an import read nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}; check that it exists and is readable")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file starts like a zip archive but is not a readable one.
    #[error("{path} is not a readable zip archive ({reason}); download it again")]
    Zip {
        /// The file.
        path: String,
        /// What the zip reader said.
        reason: String,
    },
    /// A file is neither valid JSON nor valid YAML.
    #[error("{path} is not valid {syntax} ({reason}); check that the file is complete")]
    Syntax {
        /// The file.
        path: String,
        /// `JSON` or `YAML` (what its first byte said it should be).
        syntax: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A compressed file or a tar archive that cannot be unpacked (truncated, corrupt, or
    /// larger than [`MAX_DOCUMENT_BYTES`] uncompressed).
    #[error("{path} is not a readable {packing} file ({reason}); download it again")]
    Unpack {
        /// The file.
        path: String,
        /// `gzip`, `xz`, `bzip2`, `zstd` or `tar`.
        packing: &'static str,
        /// What the reader said.
        reason: String,
    },
    /// A file PatchCTL knows that holds no records (a repository index).
    #[error("{path} is {hint}")]
    NotRecords {
        /// The file.
        path: String,
        /// What it is and what to do instead.
        hint: &'static str,
    },
    /// A file is of no format PatchCTL imports.
    #[error("{path} is not a vulnerability feed PatchCTL reads; accepted: {ACCEPTED}")]
    UnknownFormat {
        /// The file.
        path: String,
    },
}

/// Imports files, directories (recursively, in sorted order; hidden files and files
/// that are not `.json`, `.yaml`, `.yml`, `.zip` or Debian security-support lists are
/// skipped) and zip archives. A path given explicitly is read whatever its name.
pub fn import_paths(
    paths: &[PathBuf],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<FeedBatch>, ImportError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    let mut collector = Collector::default();
    let total = files.len();
    for (done, path) in files.iter().enumerate() {
        collector.add_file(path, &mut |c| progress(c.progress(path, done, total)))?;
        progress(collector.progress(path, done + 1, total));
    }
    Ok(collector.finish())
}

/// Parses one downloaded file: `name` (a file or URL name) is used in messages and to
/// recognise Debian security-support lists.
pub fn parse_bytes(name: &str, bytes: &[u8]) -> Result<Vec<FeedBatch>, ImportError> {
    let mut collector = Collector::default();
    if bytes.starts_with(ZIP_MAGIC) {
        collector.add_zip(name, Cursor::new(bytes), &mut |_| {})?;
    } else {
        collector.add_stream(name, Box::new(bytes), 0, &mut |_| {})?;
    }
    Ok(collector.finish())
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

fn read_error(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The files under `dir` an import reads, sorted, recursively. Symbolic links to
/// directories are not followed (no loops); links to files are read.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    let mut entries: Vec<_> = entries
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(|e| read_error(&path, e))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if wanted(&name) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a directory walk (or a walk of a tar archive) reads a file of this name:
/// `.json`, `.yaml`, `.yml`, `.xml`, `.zip` and `.tar`, each also compressed (`.gz`,
/// `.xz`, `.bz2`, `.zst`), and the feeds' own extensionless or text names.
fn wanted(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = [".gz", ".xz", ".bz2", ".zst"]
        .iter()
        .find_map(|c| lower.strip_suffix(c))
        .unwrap_or(&lower);
    let ext = stem.rsplit_once('.').map(|(_, e)| e);
    matches!(ext, Some("json" | "yaml" | "yml" | "zip" | "xml" | "tar"))
        || debian::looks_like_security_support(name)
        || redhat::wanted_name(name)
}

/// A record with only an id and a modification time, for the importers that assemble
/// records from several statements.
pub(crate) fn bare_record(id: String, modified: Option<String>) -> Record {
    Record {
        id,
        aliases: Vec::new(),
        summary: String::new(),
        severity: None,
        cvss_vector: None,
        published: None,
        modified,
        withdrawn: false,
        affected: Vec::new(),
        exploited: None,
    }
}

/// A parse result with one rejection only.
fn rejected_only(rejected: Rejected) -> Parsed {
    Parsed {
        records: Vec::new(),
        rejected: vec![rejected],
    }
}

/// One line of at most 200 characters: the first non-blank line of `text`, trimmed.
pub(crate) fn one_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    clip(line.unwrap_or_default(), 200)
}

/// `text` cut to at most `max` characters (an ellipsis marks the cut).
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// What the documents are, decided by shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Kev,
    Vex,
    Alpine,
    VulnList,
    Osv,
    DebianTracker,
    RedHatCsaf,
    RedHatApi,
    RedHatApiList,
    SuseCsaf,
    Bodhi,
    BodhiReleases,
    ArchTracker,
}

/// Recognises a document: OpenVEX (`@context` mentions openvex), Alpine secdb
/// (`distroversion` and `packages`), vuln-list-debian (`Header` and `Annotations`), OSV
/// (`id` and one of `affected`, `schema_version`, `modified`), the Debian tracker JSON
/// (`{source: {CVE-…: {releases: …}}}`), SUSE CSAF (`document.category` `csaf_vex` or
/// `csaf_security_advisory`, published by SUSE), Fedora Bodhi updates (and its release
/// list, a hint), Arch tracker groups (`name` `AVG-…`).
fn detect(v: &Value) -> Option<Format> {
    if kev::looks_like(v) {
        Some(Format::Kev)
    } else if suse::csaf::looks_like(v) {
        Some(Format::SuseCsaf)
    } else if vex::looks_like(v) {
        Some(Format::Vex)
    } else if redhat::looks_like_csaf(v) {
        Some(Format::RedHatCsaf)
    } else if redhat::looks_like_api(v) {
        Some(Format::RedHatApi)
    } else if redhat::looks_like_api_list(v) {
        Some(Format::RedHatApiList)
    } else if alpine::looks_like(v) {
        Some(Format::Alpine)
    } else if debian::looks_like_vuln_list(v) {
        Some(Format::VulnList)
    } else if osv::looks_like(v) {
        Some(Format::Osv)
    } else if debian::looks_like_tracker_json(v) {
        Some(Format::DebianTracker)
    } else if fedora::looks_like_bodhi(v) {
        Some(Format::Bodhi)
    } else if fedora::looks_like_bodhi_releases(v) {
        Some(Format::BodhiReleases)
    } else if arch::looks_like(v) {
        Some(Format::ArchTracker)
    } else {
        None
    }
}

/// Everything read so far.
#[derive(Default)]
struct Collector {
    feeds: BTreeMap<&'static str, Parsed>,
    vuln_list: debian::VulnList,
    alpine: alpine::SecDb,
    suse_oval: suse::oval::Oval,
    documents: usize,
    rejected: usize,
}

/// Why one document could not be used (an [`ImportError`] for a file, a [`Rejected`]
/// for a zip entry).
enum DocError {
    Syntax(&'static str, String),
    Unknown,
    /// A known file that holds no records, and what to do instead.
    Index(&'static str),
}

impl Collector {
    fn progress(&self, path: &Path, files_done: usize, files_total: usize) -> Progress {
        Progress {
            path: path.to_path_buf(),
            files_done,
            files_total,
            documents: self.documents,
            rejected: self.rejected,
        }
    }

    fn add_file(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(&Collector),
    ) -> Result<(), ImportError> {
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| read_error(path, e))?;
        let mut magic = Vec::with_capacity(4);
        (&mut file)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(|e| read_error(path, e))?;
        file.rewind().map_err(|e| read_error(path, e))?;
        if magic == ZIP_MAGIC {
            return self.add_zip(&name, BufReader::new(file), progress);
        }
        self.add_stream(&name, Box::new(BufReader::new(file)), 0, progress)
    }

    /// One file that is not a zip archive on disk: compressed (once), a tar archive, or
    /// one document.
    fn add_stream(
        &mut self,
        name: &str,
        reader: Box<dyn Read + '_>,
        depth: u8,
        progress: &mut dyn FnMut(&Collector),
    ) -> Result<(), ImportError> {
        let unpack_error = |packing: &'static str, e: std::io::Error| ImportError::Unpack {
            path: name.to_string(),
            packing,
            reason: e.to_string(),
        };
        let (head, mut reader) = packing::peek(reader, 512).map_err(|e| unpack_error("file", e))?;
        if let Some(p) = Packing::of(&head).filter(|_| depth == 0) {
            let inner = p
                .unpack(reader, MAX_DOCUMENT_BYTES)
                .map_err(|e| unpack_error(p.name(), e))?;
            return self.add_stream(&p.inner_name(name), inner, depth + 1, progress);
        }
        let packing = if depth == 0 { "file" } else { "compressed" };
        if packing::is_tar(&head) {
            return self.add_tar(name, reader, progress);
        }
        let bytes = packing::read_limited(&mut reader, MAX_DOCUMENT_BYTES)
            .map_err(|e| unpack_error(packing, e))?
            .ok_or_else(|| {
                unpack_error(
                    packing,
                    std::io::Error::other(format!(
                        "larger than {} MiB uncompressed",
                        MAX_DOCUMENT_BYTES >> 20
                    )),
                )
            })?;
        if bytes.starts_with(ZIP_MAGIC) {
            return self.add_zip(name, Cursor::new(bytes), progress);
        }
        self.add_file_bytes(name, &bytes)
    }

    /// A tar archive, entry by entry: every entry a directory walk would read is one
    /// document; a bad entry is a rejection (`archive:entry`), a broken archive an error.
    fn add_tar(
        &mut self,
        name: &str,
        reader: Box<dyn Read + '_>,
        progress: &mut dyn FnMut(&Collector),
    ) -> Result<(), ImportError> {
        let broken = |e: std::io::Error| ImportError::Unpack {
            path: name.to_string(),
            packing: "tar",
            reason: e.to_string(),
        };
        let mut archive = tar::Archive::new(reader);
        for (i, entry) in archive.entries().map_err(broken)?.enumerate() {
            let mut entry = entry.map_err(broken)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let entry_name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| format!("entry {i}"));
            let base = entry_name.rsplit('/').next().unwrap_or(&entry_name);
            if base.starts_with('.') || !wanted(base) {
                continue;
            }
            let origin = format!("{name}:{entry_name}");
            match packing::read_limited(&mut entry, MAX_ENTRY_BYTES).map_err(broken)? {
                Some(bytes) => self.add_entry(origin, &bytes),
                None => self.reject(
                    origin,
                    format!(
                        "tar entry is larger than {} MiB; refused",
                        MAX_ENTRY_BYTES >> 20
                    ),
                ),
            }
            if (i + 1) % 1000 == 0 {
                progress(self);
            }
        }
        Ok(())
    }

    /// One document inside an archive: what it cannot be is a rejection by its name.
    fn add_entry(&mut self, origin: String, bytes: &[u8]) {
        match self.add_document(&origin, bytes) {
            Ok(()) => {}
            Err(DocError::Syntax(syntax, reason)) => {
                self.reject(origin, format!("not valid {syntax}: {reason}"));
            }
            Err(DocError::Unknown) => {
                self.reject(origin, format!("not a known format; accepted: {ACCEPTED}"));
            }
            Err(DocError::Index(hint)) => self.reject(origin, hint.to_string()),
        }
    }

    /// One file that is not a zip archive.
    fn add_file_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), ImportError> {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if debian::looks_like_security_support(base) {
            let text = std::str::from_utf8(bytes).map_err(|e| ImportError::Syntax {
                path: name.to_string(),
                syntax: "UTF-8 text",
                reason: e.to_string(),
            })?;
            self.documents += 1;
            self.push(debian::FEED, debian::parse_security_support(base, text));
            return Ok(());
        }
        if redhat::is_deletions_list(base) {
            let text = String::from_utf8_lossy(bytes);
            self.documents += 1;
            self.push(redhat::FEED_CSAF, redhat::parse_deletions(base, &text));
            return Ok(());
        }
        self.add_document(name, bytes).map_err(|e| match e {
            DocError::Syntax(syntax, reason) => ImportError::Syntax {
                path: name.to_string(),
                syntax,
                reason,
            },
            DocError::Unknown => ImportError::UnknownFormat {
                path: name.to_string(),
            },
            DocError::Index(hint) => ImportError::NotRecords {
                path: name.to_string(),
                hint,
            },
        })
    }

    fn add_zip<R: Read + Seek>(
        &mut self,
        name: &str,
        reader: R,
        progress: &mut dyn FnMut(&Collector),
    ) -> Result<(), ImportError> {
        let mut archive = zip::ZipArchive::new(reader).map_err(|e| ImportError::Zip {
            path: name.to_string(),
            reason: e.to_string(),
        })?;
        for i in 0..archive.len() {
            let (origin, bytes) = match read_entry(&mut archive, name, i) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(rejected) => {
                    self.reject(rejected.id, rejected.reason);
                    continue;
                }
            };
            self.add_entry(origin, &bytes);
            if (i + 1) % 1000 == 0 {
                progress(self);
            }
        }
        Ok(())
    }

    /// Parses and files one XML, JSON or YAML document.
    fn add_document(&mut self, origin: &str, bytes: &[u8]) -> Result<(), DocError> {
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            let text =
                std::str::from_utf8(text).map_err(|e| DocError::Syntax("XML", e.to_string()))?;
            self.documents += 1;
            return self.add_xml(origin, text);
        }
        let v = decode(bytes)?;
        self.documents += 1;
        match detect(&v).ok_or(DocError::Unknown)? {
            Format::Kev => self.push(kev::FEED, kev::parse(origin, &v)),
            Format::Vex => self.push(vex::FEED, vex::parse(origin, &v)),
            Format::Alpine => self.alpine.add(origin, &v),
            Format::Osv => {
                let parsed = match osv::parse(origin, &v) {
                    Ok(record) => Parsed {
                        records: vec![record],
                        rejected: Vec::new(),
                    },
                    Err(rejected) => rejected_only(rejected),
                };
                self.push(osv::FEED, parsed);
            }
            Format::VulnList => {
                if let Err(rejected) = self.vuln_list.add(origin, &v) {
                    self.push(debian::FEED, rejected_only(rejected));
                }
            }
            Format::DebianTracker => self.push(debian::FEED, debian::parse_tracker_json(&v)),
            Format::RedHatCsaf => self.push(redhat::FEED_CSAF, redhat::parse_csaf(origin, &v)),
            Format::RedHatApi => {
                let parsed = match redhat::parse_api(origin, &v) {
                    Ok(record) => Parsed {
                        records: vec![record],
                        rejected: Vec::new(),
                    },
                    Err(rejected) => rejected_only(rejected),
                };
                self.push(redhat::FEED_API, parsed);
            }
            Format::RedHatApiList => return Err(DocError::Index(redhat::API_LIST_HINT)),
            Format::SuseCsaf => self.push(suse::CSAF_FEED, suse::csaf::parse(origin, &v)),
            Format::Bodhi => self.push(fedora::FEED, fedora::parse_bodhi(origin, &v)),
            Format::BodhiReleases => return Err(DocError::Index(fedora::RELEASES_HINT)),
            Format::ArchTracker => self.push(arch::FEED, arch::parse(origin, &v)),
        }
        Ok(())
    }

    /// One XML document, recognised by its root element.
    fn add_xml(&mut self, origin: &str, text: &str) -> Result<(), DocError> {
        match xml_root(text) {
            // each XML format's importer adds its root element here
            Some("oval_definitions") if suse::oval::looks_like(text) => self
                .suse_oval
                .add(text)
                .map_err(|e| DocError::Syntax("XML", e)),
            Some("updates") => {
                let feeds = updateinfo::parse(origin, text).map_err(|e| match e {
                    updateinfo::UpdateinfoError::Xml(reason) => DocError::Syntax("XML", reason),
                    updateinfo::UpdateinfoError::UnknownVendor => DocError::Unknown,
                })?;
                for (feed, parsed) in feeds {
                    self.push(feed, parsed);
                }
                Ok(())
            }
            Some("repomd") => Err(DocError::Index(
                "a repository index (repomd.xml), not advisories: import the updateinfo \
                 file it lists, or sync its URL as a feed of kind repomd",
            )),
            _ => Err(DocError::Unknown),
        }
    }

    fn push(&mut self, feed: &'static str, parsed: Parsed) {
        self.rejected += parsed.rejected.len();
        self.feeds.entry(feed).or_default().extend(parsed);
    }

    fn reject(&mut self, id: String, reason: String) {
        self.push(osv::FEED, rejected_only(Rejected { id, reason }));
    }

    fn finish(mut self) -> Vec<FeedBatch> {
        let vuln_list = std::mem::take(&mut self.vuln_list);
        if !vuln_list.is_empty() {
            self.push(debian::FEED, vuln_list.finish());
        }
        let suse_oval = std::mem::take(&mut self.suse_oval);
        if !suse_oval.is_empty() {
            self.push(suse::OVAL_FEED, suse_oval.finish());
        }
        let alpine = std::mem::take(&mut self.alpine).finish();
        if !(alpine.records.is_empty() && alpine.rejected.is_empty()) {
            self.push(alpine::FEED, alpine);
        }
        self.feeds
            .into_iter()
            .map(|(feed, parsed)| FeedBatch {
                feed,
                parsed: Parsed {
                    records: latest_per_id(parsed.records),
                    rejected: parsed.rejected,
                },
            })
            .collect()
    }
}

/// Reads zip entry `i` of the archive `archive_name`: `Ok(None)` for a directory; a
/// rejection (`archive:entry`) for an entry that cannot be read or is too big.
fn read_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    archive_name: &str,
    i: usize,
) -> Result<Option<(String, Vec<u8>)>, Rejected> {
    let reject = |entry: &str, reason: String| Rejected {
        id: format!("{archive_name}:{entry}"),
        reason,
    };
    let entry = archive
        .by_index(i)
        .map_err(|e| reject(&format!("entry {i}"), format!("unreadable zip entry: {e}")))?;
    if entry.is_dir() {
        return Ok(None);
    }
    let name = entry.name().to_string();
    let mut bytes = Vec::new();
    match entry.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes) {
        Err(e) => Err(reject(&name, format!("unreadable zip entry: {e}"))),
        Ok(n) if n as u64 > MAX_ENTRY_BYTES => Err(reject(
            &name,
            format!(
                "zip entry is larger than {} MiB uncompressed; refused",
                MAX_ENTRY_BYTES >> 20
            ),
        )),
        Ok(_) => Ok(Some((format!("{archive_name}:{name}"), bytes))),
    }
}

/// One record per id: the one with the later `modified`, else the one read last;
/// sorted by id.
fn latest_per_id(records: Vec<Record>) -> Vec<Record> {
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for record in records {
        match by_id.get(&record.id) {
            Some(kept) if is_later(kept.modified.as_deref(), record.modified.as_deref()) => {}
            _ => {
                by_id.insert(record.id.clone(), record);
            }
        }
    }
    by_id.into_values().collect()
}

/// Whether `kept` was modified strictly after `new` (both known; RFC 3339 compared as
/// instants, anything else as text).
fn is_later(kept: Option<&str>, new: Option<&str>) -> bool {
    let (Some(kept), Some(new)) = (kept, new) else {
        return false;
    };
    let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (instant(kept), instant(new)) {
        (Some(k), Some(n)) => k > n,
        _ => kept > new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_modified_wins() {
        let rec = |modified: Option<&str>, summary: &str| Record {
            summary: summary.into(),
            ..bare_record("X-1".into(), modified.map(str::to_string))
        };
        let kept = latest_per_id(vec![
            rec(Some("2024-02-01T00:00:00Z"), "newer"),
            rec(Some("2024-01-31T23:00:00-02:00"), "older by instant"),
        ]);
        assert_eq!(kept[0].summary, "older by instant");
        let kept = latest_per_id(vec![
            rec(Some("2024-02-01T00:00:00Z"), "newer"),
            rec(Some("2024-01-01T00:00:00Z"), "older"),
        ]);
        assert_eq!(kept[0].summary, "newer");
        let kept = latest_per_id(vec![rec(None, "first"), rec(None, "last")]);
        assert_eq!((kept.len(), kept[0].summary.as_str()), (1, "last"));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(
            one_line("\n  Heap overflow in x.\nMore."),
            "Heap overflow in x."
        );
        assert_eq!(clip("äöü", 2), "äö…");
        assert_eq!(one_line(&"é".repeat(300)).chars().count(), 201);
    }
}
