//! The backups lumberjack (Tetragon's export writer) makes of a followed file: their names,
//! the order of the times in them, and which of them is a file the agent holds open.
//!
//! lumberjack renames `DIR/<stem><ext>` to `DIR/<stem>-<UTC 2006-01-02T15-04-05.000><ext>`
//! when the file is full, creates a new one at the path, and, in the background, gzips each
//! backup (`<backup>.gz` written under a `.tmp` name, renamed, then the plain one removed) and
//! deletes the oldest beyond MaxBackups. `<ext>` is Go's `filepath.Ext`: from the last dot of
//! the file name, empty without one.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;

use crate::agent::tetragon::time::parse_rfc3339_ns;

/// How lumberjack names the backups of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The name without its extension, and a dash.
    prefix: String,
    ext: String,
}

/// The suffix of a gzipped backup.
const GZ: &str = ".gz";

impl Pattern {
    /// The pattern of `path`'s backups; `None` for a name that is not UTF-8 (lumberjack's
    /// names are Go strings built from it, so that cannot be Tetragon's file anyway).
    pub fn of(path: &Path) -> Option<Pattern> {
        let name = path.file_name()?.to_str()?;
        let (stem, ext) = name.rfind('.').map_or((name, ""), |i| name.split_at(i));
        Some(Pattern {
            prefix: format!("{stem}-"),
            ext: ext.to_string(),
        })
    }

    /// The time in a backup's name, in ms since the epoch, and whether it is the gzipped one.
    pub fn parse(&self, name: &str) -> Option<(i64, bool)> {
        let (rest, gz) = match name.strip_suffix(GZ) {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        let time = rest.strip_prefix(&self.prefix)?.strip_suffix(&self.ext)?;
        Some((parse_time(time)?, gz))
    }
}

/// lumberjack's `2006-01-02T15-04-05.000`, always UTC (Tetragon leaves LocalTime unset).
fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape = b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let rfc3339 = format!("{}T{}:{}:{}Z", &s[..10], &s[11..13], &s[14..16], &s[17..]);
    parse_rfc3339_ns(&rfc3339).map(|ns| ns.div_euclid(1_000_000))
}

/// A backup's uncompressed file, as the folder listed it.
#[derive(Debug, Clone)]
pub struct Plain {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// Its creation (birth) time in ns since the epoch, where the file system keeps one.
    pub created: Option<i64>,
}

/// One backup: the plain file, the gzipped one, or both while lumberjack compresses.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The time in its name (when it was rotated), ms since the epoch.
    pub ms: i64,
    pub plain: Option<Plain>,
    pub gz: Option<PathBuf>,
}

impl Backup {
    /// Whether its plain file is the file `(dev, ino)`.
    pub fn is(&self, dev: u64, ino: u64) -> bool {
        self.plain
            .as_ref()
            .is_some_and(|p| p.dev == dev && p.ino == ino)
    }

    /// Where its gzipped copy is or will be.
    pub fn gz_path(&self) -> Option<PathBuf> {
        self.gz.clone().or_else(|| {
            self.plain.as_ref().map(|p| {
                let mut s = p.path.clone().into_os_string();
                s.push(GZ);
                PathBuf::from(s)
            })
        })
    }
}

/// The backups of `path`, oldest first. A folder that cannot be read has none: the agent then
/// follows the path as it did before lumberjack's backups were looked at.
pub fn scan(path: &Path, pattern: &Pattern) -> Vec<Backup> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Backup> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((ms, gz)) = name.to_str().and_then(|n| pattern.parse(n)) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let i = match out.iter().position(|b| b.ms == ms) {
            Some(i) => i,
            None => {
                out.push(Backup {
                    ms,
                    plain: None,
                    gz: None,
                });
                out.len() - 1
            }
        };
        if gz {
            out[i].gz = Some(entry.path());
        } else {
            out[i].plain = Some(Plain {
                path: entry.path(),
                dev: meta.dev(),
                ino: meta.ino(),
                created: meta.created().ok().and_then(ns),
            });
        }
    }
    out.sort_by_key(|b| b.ms);
    out
}

/// ns since the epoch.
pub fn ns(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// Whether the gzip file `gz` holds `file` (`len` bytes, no longer written to): the length in
/// its trailer (mod 2^32) and its first 4 KiB agree. lumberjack's gzip header carries no name
/// or time, and the inode is the new file's, so the content is what tells.
pub fn gz_holds(gz: &Path, file: &File, len: u64) -> bool {
    let check = || -> io::Result<bool> {
        let g = File::open(gz)?;
        let glen = g.metadata()?.len();
        if glen < 18 {
            return Ok(false);
        }
        let mut isize = [0u8; 4];
        g.read_exact_at(&mut isize, glen - 4)?;
        if u64::from(u32::from_le_bytes(isize)) != len & 0xffff_ffff {
            return Ok(false);
        }
        let n = usize::try_from(len.min(4096)).unwrap_or(4096);
        let mut want = vec![0u8; n];
        file.read_exact_at(&mut want, 0)?;
        let mut got = vec![0u8; n];
        MultiGzDecoder::new(g).read_exact(&mut got)?;
        Ok(got == want)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tetragon() -> Pattern {
        Pattern::of(Path::new("/var/run/cilium/tetragon/tetragon.log")).unwrap()
    }

    #[test]
    fn parses_lumberjack_backup_names() {
        let p = tetragon();
        // 2026-01-02T03:04:05.678Z
        let ms = 1_767_323_045_678;
        assert_eq!(
            p.parse("tetragon-2026-01-02T03-04-05.678.log"),
            Some((ms, false))
        );
        assert_eq!(
            p.parse("tetragon-2026-01-02T03-04-05.678.log.gz"),
            Some((ms, true))
        );
        assert_eq!(
            p.parse("tetragon-1970-01-01T00-00-00.000.log"),
            Some((0, false))
        );
        for other in [
            "tetragon.log",
            "tetragon.log.1",
            "tetragon-2026-01-02T03-04-05.678.log.gz.tmp",
            "tetragon-2026-01-02T03-04-05.log",
            "tetragon-2026-01-02T03:04:05.678.log",
            "tetragon-2026-01-02T03-04-05.6789.log",
            "tetragon-2026-13-02T03-04-05.678.log",
            "tetragon-2026-01-02T03-04-05.678.json",
            "other-2026-01-02T03-04-05.678.log",
            "tetragon-2026-01-02T03-04-05.678Z.log",
        ] {
            assert_eq!(p.parse(other), None, "{other}");
        }
    }

    #[test]
    fn the_extension_is_go_filepath_ext() {
        let p = Pattern::of(Path::new("export.json.log")).unwrap();
        assert!(p.parse("export.json-2026-01-02T03-04-05.678.log").is_some());
        let p = Pattern::of(Path::new("/x/events")).unwrap();
        assert!(p.parse("events-2026-01-02T03-04-05.678").is_some());
        assert!(p.parse("events-2026-01-02T03-04-05.678.gz").is_some());
    }

    #[test]
    fn scan_orders_by_the_time_in_the_names_and_pairs_plain_with_gz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tetragon.log");
        // Created out of order; the names' times decide (and a later day beats a later hour).
        for name in [
            "tetragon-2026-01-03T00-00-00.000.log",
            "tetragon-2026-01-02T23-59-59.999.log.gz",
            "tetragon-2026-01-02T23-59-59.999.log",
            "tetragon-2026-01-02T10-00-00.001.log.gz",
            "tetragon-2026-01-02T10-00-00.001.log.gz.tmp",
            "tetragon.log",
            "tetragon.log.1",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("tetragon-2026-01-04T00-00-00.000.log")).unwrap();
        let got = scan(&path, &tetragon());
        let shape: Vec<(i64, bool, bool)> = got
            .iter()
            .map(|b| (b.ms, b.plain.is_some(), b.gz.is_some()))
            .collect();
        let ms = |s: &str| parse_time(s).unwrap();
        assert_eq!(
            shape,
            vec![
                (ms("2026-01-02T10-00-00.001"), false, true),
                (ms("2026-01-02T23-59-59.999"), true, true),
                (ms("2026-01-03T00-00-00.000"), true, false),
            ]
        );
        let newest =
            std::fs::metadata(dir.path().join("tetragon-2026-01-03T00-00-00.000.log")).unwrap();
        assert!(got[2].is(newest.dev(), newest.ino()));
        assert!(!got[1].is(newest.dev(), newest.ino()));
        assert_eq!(
            got[2].gz_path().unwrap(),
            dir.path().join("tetragon-2026-01-03T00-00-00.000.log.gz")
        );
        assert!(scan(&dir.path().join("missing/tetragon.log"), &tetragon()).is_empty());
    }

    #[test]
    fn a_gzip_holds_the_file_whose_length_and_start_it_has() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..2_000)
            .flat_map(|i| format!("{{\"line\":{i}}}\n").into_bytes())
            .collect();
        let plain = dir.path().join("f.log");
        std::fs::write(&plain, &text).unwrap();
        let gz = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            let mut w =
                flate2::write::GzEncoder::new(File::create(&p).unwrap(), Default::default());
            w.write_all(bytes).unwrap();
            w.finish().unwrap();
            p
        };
        let same = gz("same.gz", &text);
        let mut changed = text.clone();
        changed[10] = b'9';
        let other = gz("other.gz", &changed);
        let shorter = gz("shorter.gz", &text[..text.len() - 1]);
        let f = File::open(&plain).unwrap();
        let len = text.len() as u64;
        assert!(gz_holds(&same, &f, len));
        assert!(!gz_holds(&other, &f, len));
        assert!(!gz_holds(&shorter, &f, len));
        assert!(!gz_holds(&plain, &f, len));
        assert!(!gz_holds(&dir.path().join("missing.gz"), &f, len));
    }
}
