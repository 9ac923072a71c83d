//! What each [`super::FeedKind`] downloads: the files to hand to the import (none when
//! nothing changed) and the cursor to keep once they are stored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use patchctl_net::download::{Downloader, Fetched, FetchedFile, Validators};

use super::pointers::{self, PointerError};
use super::{Cursor, Event, MAX_POINTER_BYTES, Observer, SyncError, without_userinfo};

/// One feed's downloads in progress.
pub struct Fetch<'a> {
    /// The downloader.
    pub downloader: &'a Downloader,
    /// The temporary directory the files go to.
    pub dir: &'a Path,
    /// The feed's name.
    pub feed: &'a str,
    /// Who hears about progress.
    pub observer: &'a mut (dyn Observer + Send),
    /// Bytes downloaded so far.
    pub bytes: u64,
}

/// Files to import and the cursor to keep.
pub type Plan = (Vec<PathBuf>, Cursor);

impl Fetch<'_> {
    /// A small file, in memory (within [`MAX_POINTER_BYTES`]): `None` when not modified.
    async fn pointer(
        &mut self,
        url: &str,
        known: &Validators,
    ) -> Result<Option<(Vec<u8>, Validators)>, SyncError> {
        let downloader = self.downloader.clone().with_max_bytes(MAX_POINTER_BYTES);
        match downloader.fetch(url, known, &mut |_, _| {}).await? {
            Fetched::NotModified => Ok(None),
            Fetched::Body { bytes, validators } => {
                self.bytes += bytes.len() as u64;
                Ok(Some((bytes, validators)))
            }
        }
    }

    /// A file streamed to `name` (a relative path checked by
    /// [`pointers::relative_path`]) in the directory: `None` when not modified.
    async fn file(
        &mut self,
        url: &str,
        known: &Validators,
        name: &str,
    ) -> Result<Option<(PathBuf, Validators)>, SyncError> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SyncError::WorkDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let feed = self.feed;
        let observer = &mut *self.observer;
        let mut last = Instant::now();
        let mut progress = |got: u64, total: Option<u64>| {
            if last.elapsed().as_millis() >= 200 {
                observer.event(Event::Progress { feed, got, total });
                last = Instant::now();
            }
        };
        match self
            .downloader
            .fetch_to_file(url, known, &path, &mut progress)
            .await?
        {
            FetchedFile::NotModified => Ok(None),
            FetchedFile::Written { bytes, validators } => {
                self.bytes += bytes;
                Ok(Some((path, validators)))
            }
        }
    }
}

/// The last segment of `url`'s path, as a file name (`all.zip`), or `feed`.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    match pointers::relative_path(last) {
        Ok(name) if !name.contains("://") => name.to_owned(),
        _ => "feed".to_owned(),
    }
}

fn pointer_error(file: &'static str, url: &str) -> impl FnOnce(PointerError) -> SyncError {
    let url = without_userinfo(url);
    move |source| SyncError::Pointer { file, url, source }
}

/// `file`: the URL's file, conditionally.
pub async fn file(fetch: &mut Fetch<'_>, url: &str, mut cursor: Cursor) -> Result<Plan, SyncError> {
    let known = cursor.validators("file", url);
    match fetch.file(url, &known, &file_name(url)).await? {
        None => Ok((Vec::new(), cursor)),
        Some((path, validators)) => {
            cursor.stamp("file", url, validators);
            Ok((vec![path], cursor))
        }
    }
}

/// `repomd`: `mirror.list` (when the URL is not a `repomd.xml`) → `repomd.xml` → its
/// `updateinfo` file. A `repomd.xml` not modified since the last sync ends it.
pub async fn repomd(
    fetch: &mut Fetch<'_>,
    url: &str,
    mut cursor: Cursor,
) -> Result<Plan, SyncError> {
    let repomd_url = if file_name(url) == "repomd.xml" {
        url.to_owned()
    } else {
        let (list, _) = fetch
            .pointer(url, &Validators::default())
            .await?
            .ok_or_else(|| SyncError::Task("unconditional request answered 304".into()))?;
        let base = pointers::mirror_list(&list).map_err(pointer_error("mirror.list", url))?;
        format!("{base}/repodata/repomd.xml")
    };
    let known = cursor.validators("repomd", &repomd_url);
    let Some((xml, repomd_validators)) = fetch.pointer(&repomd_url, &known).await? else {
        return Ok((Vec::new(), cursor));
    };
    let href =
        pointers::repomd_updateinfo(&xml).map_err(pointer_error("repomd.xml", &repomd_url))?;
    let updateinfo_url = pointers::join(&pointers::repository_base(&repomd_url), &href)
        .map_err(pointer_error("repomd.xml", &repomd_url))?;
    let known = cursor.validators("updateinfo", &updateinfo_url);
    let fetched = fetch
        .file(&updateinfo_url, &known, &file_name(&updateinfo_url))
        .await?;
    cursor.stamp("repomd", &repomd_url, repomd_validators);
    match fetched {
        None => Ok((Vec::new(), cursor)),
        Some((path, validators)) => {
            cursor.stamp("updateinfo", &updateinfo_url, validators);
            Ok((vec![path], cursor))
        }
    }
}

/// `redhat-vex-bulk`: `archive_latest.txt` names the archive; a new archive is
/// downloaded whole; with the same archive, the documents `changes.csv` lists as
/// changed since the last sync are fetched (a document gone since, 404, is skipped),
/// and `deletions.csv` when it changed.
pub async fn redhat_vex_bulk(
    fetch: &mut Fetch<'_>,
    url: &str,
    mut cursor: Cursor,
) -> Result<Plan, SyncError> {
    let dir = pointers::directory_of(url);
    let (latest, _) = fetch
        .pointer(url, &Validators::default())
        .await?
        .ok_or_else(|| SyncError::Task("unconditional request answered 304".into()))?;
    let archive =
        pointers::archive_latest(&latest).map_err(pointer_error("archive_latest.txt", url))?;
    if cursor.archive.as_deref() != Some(archive.as_str()) {
        let archive_url =
            pointers::join(&dir, &archive).map_err(pointer_error("archive_latest.txt", url))?;
        let (path, _) = fetch
            .file(&archive_url, &Validators::default(), &archive)
            .await?
            .ok_or_else(|| SyncError::Task("unconditional request answered 304".into()))?;
        // A new archive starts over: changes are read from the archive's day on.
        let cursor = Cursor {
            since: Some(pointers::archive_date(&archive).unwrap_or_else(Utc::now)),
            archive: Some(archive),
            stamps: Default::default(),
        };
        return Ok((vec![path], cursor));
    }
    let mut files = Vec::new();
    let changes_url = format!("{dir}changes.csv");
    let known = cursor.validators("changes", &changes_url);
    let mut changes_stamp = None;
    if let Some((csv, validators)) = fetch.pointer(&changes_url, &known).await? {
        let (changes, skipped) =
            pointers::changes_csv(&csv).map_err(pointer_error("changes.csv", &changes_url))?;
        if skipped > 0 {
            fetch.observer.event(Event::Note {
                feed: fetch.feed,
                text: format!("changes.csv: {skipped} malformed lines skipped"),
            });
        }
        let since = cursor.since;
        let mut newest = since;
        for change in changes.iter().filter(|c| since.is_none_or(|s| c.at > s)) {
            let doc_url = pointers::join(&dir, &change.path)
                .map_err(pointer_error("changes.csv", &changes_url))?;
            match fetch
                .file(&doc_url, &Validators::default(), &change.path)
                .await
            {
                Ok(Some((path, _))) => files.push(path),
                Ok(None) => {}
                Err(SyncError::Download(patchctl_net::download::DownloadError::Status {
                    status: 404,
                    ..
                })) => fetch.observer.event(Event::Note {
                    feed: fetch.feed,
                    text: format!(
                        "{} is gone (deleted since it changed); skipped",
                        change.path
                    ),
                }),
                Err(e) => return Err(e),
            }
            newest = newest.max(Some(change.at));
        }
        cursor.since = newest;
        changes_stamp = Some(validators);
    }
    let deletions_url = format!("{dir}deletions.csv");
    let known = cursor.validators("deletions", &deletions_url);
    if let Some((path, validators)) = fetch.file(&deletions_url, &known, "deletions.csv").await? {
        files.push(path);
        cursor.stamp("deletions", &deletions_url, validators);
    }
    if let Some(v) = changes_stamp {
        cursor.stamp("changes", &changes_url, v);
    }
    Ok((files, cursor))
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_from_urls() {
        use super::file_name;
        assert_eq!(file_name("https://h/AlmaLinux/all.zip"), "all.zip");
        assert_eq!(file_name("https://h/tracker/data/json?x=1"), "json");
        assert_eq!(file_name("https://h/"), "feed");
        assert_eq!(file_name("https://h/%2e%2e"), "feed");
    }
}
