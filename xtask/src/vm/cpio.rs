//! A writer for the cpio "newc" format, the one the kernel unpacks as an initramfs
//! (`init/initramfs.c`, which only reads newc, magic `070701`). Written here rather than
//! with the `cpio` tool so that device nodes can be put in the archive without root and
//! without a tool that Debian does not install by default.

/// Entries of one archive, in order; [`Archive::finish`] returns its bytes.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory (`path` without a leading `/`, e.g. `usr/lib`).
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.entry(path, S_IFDIR | perm, 2, (0, 0), &[]);
    }

    /// A regular file with `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, S_IFREG | perm, 1, (0, 0), data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | perm, 1, (major, minor), &[]);
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer has inode 0, like GNU cpio writes it.
        self.header("TRAILER!!!", 0, 0, 1, (0, 0), 0);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        assert!(
            !path.starts_with('/') && !path.is_empty(),
            "cpio paths are relative: {path}"
        );
        self.next_ino += 1;
        let size = u32::try_from(data.len()).expect("initramfs members are smaller than 4 GiB");
        self.header(path, self.next_ino, mode, nlink, rdev, size);
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn header(&mut self, name: &str, ino: u32, mode: u32, nlink: u32, rdev: (u32, u32), size: u32) {
        let namesize = u32::try_from(name.len() + 1).expect("short names");
        // c_ino c_mode c_uid c_gid c_nlink c_mtime c_filesize c_devmajor c_devminor
        // c_rdevmajor c_rdevminor c_namesize c_check; mtime 0 keeps the archive reproducible.
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        // The 110-byte header and the name together are padded to 4 bytes.
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back (name, mode, rdev major, rdev minor, data) for each member.
    fn parse(mut bytes: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let total = bytes.len();
        let mut out = Vec::new();
        loop {
            assert_eq!(&bytes[..6], b"070701", "magic at {}", total - bytes.len());
            let field = |i: usize| {
                let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_end = 110 + namesize as usize;
            let name = std::str::from_utf8(&bytes[110..name_end - 1])
                .unwrap()
                .to_string();
            assert_eq!(bytes[name_end - 1], 0);
            let data_start = name_end.next_multiple_of(4);
            let data = bytes[data_start..data_start + size as usize].to_vec();
            let next = (data_start + size as usize).next_multiple_of(4);
            bytes = &bytes[next..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return out;
            }
            out.push((name, mode, rmaj, rmin, data));
        }
    }

    #[test]
    fn members_read_back_with_their_kind_and_padding() {
        let mut a = Archive::new();
        a.dir("dev", 0o755);
        a.char_dev("dev/console", 0o600, 5, 1);
        a.file("init", 0o755, b"#!/bin/sh\n");
        a.file("odd", 0o644, b"abcde");
        a.symlink("bin", "usr/bin");
        let bytes = a.finish();
        assert!(bytes.len().is_multiple_of(4));
        let members = parse(&bytes);
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "odd", "bin"]);
        assert_eq!(members[0].1, 0o040755);
        assert_eq!((members[1].1, members[1].2, members[1].3), (0o020600, 5, 1));
        assert_eq!(
            (members[2].1, members[2].4.as_slice()),
            (0o100755, &b"#!/bin/sh\n"[..])
        );
        assert_eq!(members[3].4, b"abcde");
        assert_eq!(
            (members[4].1, members[4].4.as_slice()),
            (0o120777, &b"usr/bin"[..])
        );
    }
}
