//! A small reader of kernel BTF (`/sys/kernel/btf/vmlinux`): struct sizes and
//! member offsets of the running kernel, so no kernel layout is compiled in.
//!
//! aya's public `Btf` API does not expose member offsets, hence this reader. The
//! format is `include/uapi/linux/btf.h` (documented in Documentation/bpf/btf.rst):
//! a header, a section of type records and a section of NUL-terminated names.
//! Type ids start at 1; id 0 is `void`. Only little-endian BTF is read (the kernel
//! writes BTF in host byte order, and bit-field bit offsets follow byte order too).

use std::collections::HashMap;
use std::path::Path;

/// Where the kernel exposes its own BTF (CONFIG_DEBUG_INFO_BTF, kernel/bpf/sysfs_btf.c).
pub const SYS_FS_PATH: &str = "/sys/kernel/btf/vmlinux";

/// `BTF_MAGIC` in include/uapi/linux/btf.h.
const MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header` as of BTF version 1; `hdr_len` may be larger.
const HEADER_LEN: usize = 24;
/// Bound on how deep type chains (modifiers, nested anonymous members) are
/// followed, so a malformed or cyclic blob gives an error instead of a hang.
const MAX_DEPTH: u32 = 64;

/// `BTF_KIND_*` in include/uapi/linux/btf.h.
pub(crate) mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error(
        "kernel BTF not found at {path}: tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    NotFound { path: String },
    #[error("cannot read kernel BTF at {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{btf} is not BTF: magic is {found:#06x}, expected 0xeb9f")]
    BadMagic { btf: String, found: u16 },
    #[error("{btf} is big-endian BTF; tracer reads little-endian BTF only")]
    BigEndian { btf: String },
    #[error(
        "{btf} is empty: the kernel exposes no BTF; boot a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    Empty { btf: String },
    #[error("{btf} is truncated: {what}")]
    Truncated { btf: String, what: String },
    #[error("{btf} is malformed: {what}")]
    Malformed { btf: String, what: String },
    #[error("struct {name} not found in {btf}")]
    NoStruct { name: String, btf: String },
    #[error("typedef {name} not found in {btf}: this kernel lacks the tracepoint it names")]
    NoTypedef { name: String, btf: String },
    #[error("function {name} not found in {btf}: it is inlined or absent in this kernel build")]
    NoFunc { name: String, btf: String },
    #[error("{owner} has no member {member} in {btf}")]
    NoMember {
        owner: String,
        member: String,
        btf: String,
    },
    #[error("{owner} is not a struct or union in {btf}, so it has no member {member}")]
    NotComposite {
        owner: String,
        member: String,
        btf: String,
    },
    #[error("{object} is a bit field in {btf}: it has no byte offset (use bitfield_byte_mask)")]
    BitField { object: String, btf: String },
    #[error(
        "{object} in {btf} is not a bit field held in one byte (bit offset {bit_offset}, {bits} bits)"
    )]
    NotByteField {
        object: String,
        btf: String,
        bit_offset: u32,
        bits: u32,
    },
}

/// One `struct btf_member`, with the bit-field encoding already split.
#[derive(Clone, Copy, Debug)]
struct Member {
    name_off: u32,
    type_id: u32,
    /// Bit offset from the start of the enclosing struct/union.
    bit_offset: u32,
    /// Bit-field width when the struct has `kind_flag` set; 0 otherwise.
    bitfield_size: u32,
}

#[derive(Clone, Copy, Debug)]
enum Data {
    None,
    /// The u32 after an INT record: encoding << 24 | offset << 16 | bits.
    Int(u32),
    Array {
        elem: u32,
        nelems: u32,
    },
    /// Range of `Btf::members`.
    Members {
        first: u32,
        len: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct Type {
    name_off: u32,
    kind: u8,
    /// `size` for INT/ENUM/STRUCT/UNION/FLOAT/ENUM64, `type` for the others.
    size_or_type: u32,
    data: Data,
}

/// A member found by name: where it sits relative to the struct searched.
#[derive(Clone, Copy, Debug)]
struct Found {
    bit_offset: u32,
    /// 0 for an ordinary member.
    bitfield_size: u32,
    type_id: u32,
}

/// Parsed kernel BTF.
#[derive(Debug)]
pub struct Btf {
    /// Names the blob in errors: the file path, or "BTF data" for [`Btf::parse`].
    origin: String,
    /// Indexed by type id; index 0 is a placeholder for `void`.
    types: Vec<Type>,
    members: Vec<Member>,
    strings: Vec<u8>,
    /// STRUCT and UNION type ids by name, in id order.
    composites: HashMap<String, Vec<u32>>,
}

impl Btf {
    /// Reads the running kernel's BTF from [`SYS_FS_PATH`].
    pub fn from_sys_fs() -> Result<Btf, BtfError> {
        Self::from_file(Path::new(SYS_FS_PATH))
    }

    /// Reads BTF from a file (e.g. another kernel's vmlinux BTF, for tests).
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                BtfError::NotFound {
                    path: shown.clone(),
                }
            } else {
                BtfError::Read {
                    path: shown.clone(),
                    error,
                }
            }
        })?;
        Self::parse_named(&bytes, shown)
    }

    /// Parses a BTF blob held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        Self::parse_named(bytes, "BTF data".to_owned())
    }

    fn parse_named(bytes: &[u8], origin: String) -> Result<Btf, BtfError> {
        let truncated = |what: String| BtfError::Truncated {
            btf: origin.clone(),
            what,
        };
        let malformed = |what: String| BtfError::Malformed {
            btf: origin.clone(),
            what,
        };
        if bytes.is_empty() {
            return Err(BtfError::Empty { btf: origin });
        }
        if bytes.len() < 2 {
            return Err(truncated(format!(
                "{} bytes, shorter than the BTF magic",
                bytes.len()
            )));
        }
        let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
        if magic == MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian { btf: origin });
        }
        if magic != MAGIC {
            return Err(BtfError::BadMagic {
                btf: origin,
                found: magic,
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(truncated(format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let hdr_len = word(4) as usize;
        let (type_off, type_len) = (word(8) as usize, word(12) as usize);
        let (str_off, str_len) = (word(16) as usize, word(20) as usize);
        if hdr_len < HEADER_LEN {
            return Err(malformed(format!(
                "header length {hdr_len} is below {HEADER_LEN}"
            )));
        }
        // Section offsets count from the end of the header (btf_parse_hdr in kernel/bpf/btf.c).
        let section = |name: &str, off: usize, len: usize| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= bytes.len() => Ok(&bytes[start..end]),
                _ => Err(truncated(format!(
                    "{name} section (offset {off}, length {len}) runs past the end at {} bytes",
                    bytes.len()
                ))),
            }
        };
        let type_bytes = section("type", type_off, type_len)?;
        let strings = section("string", str_off, str_len)?.to_vec();

        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            data: Data::None,
        }];
        let mut members = Vec::new();
        let mut pos = 0usize;
        while pos < type_bytes.len() {
            let id = types.len();
            let start = pos;
            let need = |pos: usize, n: usize| {
                if pos + n > type_bytes.len() {
                    Err(truncated(format!(
                        "type id {id} at byte {start} runs past the end of the {}-byte type section",
                        type_bytes.len()
                    )))
                } else {
                    Ok(())
                }
            };
            let at =
                |p: usize| u32::from_le_bytes(type_bytes[p..p + 4].try_into().expect("4 bytes"));
            need(pos, 12)?;
            let (name_off, info, size_or_type) = (at(pos), at(pos + 4), at(pos + 8));
            pos += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = ((info >> 24) & 0x1f) as u8;
            let kind_flag = info >> 31 == 1;
            let data = match kind {
                kind::INT => {
                    need(pos, 4)?;
                    pos += 4;
                    Data::Int(at(pos - 4))
                }
                kind::ARRAY => {
                    need(pos, 12)?;
                    pos += 12;
                    Data::Array {
                        elem: at(pos - 12),
                        nelems: at(pos - 4),
                    }
                }
                kind::STRUCT | kind::UNION => {
                    need(pos, vlen * 12)?;
                    let first = members.len() as u32;
                    for i in 0..vlen {
                        let p = pos + i * 12;
                        let offset = at(p + 8);
                        // With kind_flag, offset = bitfield_size << 24 | bit_offset
                        // (BTF_MEMBER_BITFIELD_SIZE / BTF_MEMBER_BIT_OFFSET).
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (offset & 0x00ff_ffff, offset >> 24)
                        } else {
                            (offset, 0)
                        };
                        members.push(Member {
                            name_off: at(p),
                            type_id: at(p + 4),
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    pos += vlen * 12;
                    Data::Members {
                        first,
                        len: vlen as u32,
                    }
                }
                kind::ENUM => {
                    need(pos, vlen * 8)?;
                    pos += vlen * 8;
                    Data::None
                }
                // Parameters (struct btf_param: name_off, type), kept as members
                // at offset 0 so [`Btf::func_params`] can name them.
                kind::FUNC_PROTO => {
                    need(pos, vlen * 8)?;
                    let first = members.len() as u32;
                    for i in 0..vlen {
                        let p = pos + i * 8;
                        members.push(Member {
                            name_off: at(p),
                            type_id: at(p + 4),
                            bit_offset: 0,
                            bitfield_size: 0,
                        });
                    }
                    pos += vlen * 8;
                    Data::Members {
                        first,
                        len: vlen as u32,
                    }
                }
                kind::VAR | kind::DECL_TAG => {
                    need(pos, 4)?;
                    pos += 4;
                    Data::None
                }
                kind::DATASEC | kind::ENUM64 => {
                    need(pos, vlen * 12)?;
                    pos += vlen * 12;
                    Data::None
                }
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => Data::None,
                // A kind we do not know has a trailer of unknown length: the rest of
                // the section cannot be walked.
                other => {
                    return Err(malformed(format!(
                        "type id {id} at byte {start} has unknown kind {other}"
                    )));
                }
            };
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                data,
            });
        }

        let mut btf = Btf {
            origin,
            types,
            members,
            strings,
            composites: HashMap::new(),
        };
        let mut composites: HashMap<String, Vec<u32>> = HashMap::new();
        for (id, t) in btf.types.iter().enumerate().skip(1) {
            if matches!(t.kind, kind::STRUCT | kind::UNION) && t.name_off != 0 {
                let name = btf.name(t.name_off)?;
                composites
                    .entry(name.to_owned())
                    .or_default()
                    .push(id as u32);
            }
        }
        btf.composites = composites;
        Ok(btf)
    }

    /// Id of the typedef called `name` (the first, as the kernel's
    /// `btf_find_by_name_kind` would find it).
    pub fn typedef_id(&self, name: &str) -> Result<u32, BtfError> {
        for (id, t) in self.types.iter().enumerate().skip(1) {
            if t.kind == kind::TYPEDEF && t.name_off != 0 && self.name(t.name_off)? == name {
                return Ok(id as u32);
            }
        }
        Err(BtfError::NoTypedef {
            name: name.to_owned(),
            btf: self.origin.clone(),
        })
    }

    /// The parameter names of function `name` (the first FUNC of that name, as
    /// the kernel's `btf_find_by_name_kind` would find it), in order.
    pub fn func_params(&self, name: &str) -> Result<Vec<String>, BtfError> {
        let id = self.func_id(name)?;
        let proto = self.ty(self.ty(id)?.size_or_type)?;
        let Data::Members { first, len } = proto.data else {
            return Err(self.malformed(format!("function {name}'s type is not a FUNC_PROTO")));
        };
        let params = self
            .members
            .get(first as usize..(first + len) as usize)
            .ok_or_else(|| self.malformed(format!("function {name}'s parameters")))?;
        params
            .iter()
            .map(|p| self.name(p.name_off).map(str::to_owned))
            .collect()
    }

    fn func_id(&self, name: &str) -> Result<u32, BtfError> {
        for (id, t) in self.types.iter().enumerate().skip(1) {
            if t.kind == kind::FUNC && t.name_off != 0 && self.name(t.name_off)? == name {
                return Ok(id as u32);
            }
        }
        Err(BtfError::NoFunc {
            name: name.to_owned(),
            btf: self.origin.clone(),
        })
    }

    /// [`Btf::attach_only`], keeping also the functions in `funcs` at their ids,
    /// for attaching fexit programs (aya's `FExit::load` looks the FUNC up by name).
    pub fn attach_only_with_funcs(
        &self,
        typedefs: &[&str],
        funcs: &[&str],
    ) -> Result<Vec<u8>, BtfError> {
        let mut wanted = Vec::with_capacity(typedefs.len() + funcs.len());
        for &name in typedefs {
            wanted.push((self.typedef_id(name)?, name, kind::TYPEDEF));
        }
        for &name in funcs {
            wanted.push((self.func_id(name)?, name, kind::FUNC));
        }
        Ok(slim(wanted))
    }

    /// A BTF blob that keeps only what attaching tp_btf programs needs: the
    /// typedefs in `typedefs` at their ids in this BTF, every other id up to the
    /// highest of them an anonymous `void *`.
    ///
    /// Attaching a tp_btf program only needs the vmlinux id of the tracepoint's
    /// `btf_trace_<name>` typedef (aya's `BtfTracePoint::load` looks it up by
    /// name; the kernel checks it in `bpf_check_attach_target`), and our programs
    /// carry no CO-RE relocations that would need the real types. Handing aya
    /// this instead of the full vmlinux BTF saves it parsing ~150k types into
    /// tens of MB of small allocations, which was the agent's peak RSS.
    pub fn attach_only(&self, typedefs: &[&str]) -> Result<Vec<u8>, BtfError> {
        self.attach_only_with_funcs(typedefs, &[])
    }

    /// Size in bytes of `struct name`.
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        let id = self.struct_id(name)?;
        Ok(self.ty(id)?.size_or_type)
    }

    /// Byte offset of a member, descending into anonymous struct/union members
    /// (task_struct has many), following a dotted path through nested named
    /// struct members ("sa.sa_handler" in k_sigaction).
    pub fn member_offset(&self, struct_name: &str, path: &str) -> Result<u32, BtfError> {
        let found = self.resolve_path(struct_name, path)?;
        if found.bitfield_size != 0 || found.bit_offset % 8 != 0 {
            return Err(BtfError::BitField {
                object: format!("{struct_name}.{path}"),
                btf: self.origin.clone(),
            });
        }
        Ok(found.bit_offset / 8)
    }

    /// Size in bytes of the type of a member (same path rules as
    /// [`Btf::member_offset`]); for a bit field, the size of its storage type.
    pub fn member_size(&self, struct_name: &str, path: &str) -> Result<u32, BtfError> {
        let found = self.resolve_path(struct_name, path)?;
        self.type_size(found.type_id)
    }

    /// For bit fields: (byte offset of the byte holding the bits, mask within that
    /// byte), for fields such as signal_struct.is_child_subreaper. A plain one-byte
    /// member (a `bool` in some kernel) is accepted with mask 0xff, so a test of
    /// `byte & mask != 0` reads the same flag either way.
    pub fn bitfield_byte_mask(
        &self,
        struct_name: &str,
        member: &str,
    ) -> Result<(u32, u8), BtfError> {
        let found = self.resolve_path(struct_name, member)?;
        let not_byte = || BtfError::NotByteField {
            object: format!("{struct_name}.{member}"),
            btf: self.origin.clone(),
            bit_offset: found.bit_offset,
            bits: found.bitfield_size,
        };
        let (byte, shift) = (found.bit_offset / 8, found.bit_offset % 8);
        if found.bitfield_size == 0 {
            return if shift == 0 && self.type_size(found.type_id)? == 1 {
                Ok((byte, 0xff))
            } else {
                Err(not_byte())
            };
        }
        if shift + found.bitfield_size > 8 {
            return Err(not_byte());
        }
        // Little-endian bit numbering: bit offset b is bit (b % 8) of byte (b / 8).
        let mask = (((1u16 << found.bitfield_size) - 1) << shift) as u8;
        Ok((byte, mask))
    }

    fn resolve_path(&self, struct_name: &str, path: &str) -> Result<Found, BtfError> {
        let mut type_id = self.struct_id(struct_name)?;
        let mut owner = struct_name.to_owned();
        let mut bit_offset = 0u32;
        let mut last = None;
        for part in path.split('.') {
            if last.is_some() {
                type_id = self.strip_modifiers(type_id)?;
            }
            if !self.is_composite(type_id)? {
                return Err(BtfError::NotComposite {
                    owner,
                    member: part.to_owned(),
                    btf: self.origin.clone(),
                });
            }
            // An empty name would match an anonymous member, which has no name to ask for.
            let found = (!part.is_empty())
                .then(|| self.find_member(type_id, part, 0))
                .transpose()?
                .flatten()
                .ok_or_else(|| BtfError::NoMember {
                    owner: owner.clone(),
                    member: part.to_owned(),
                    btf: self.origin.clone(),
                })?;
            bit_offset = bit_offset
                .checked_add(found.bit_offset)
                .ok_or_else(|| self.malformed(format!("{owner}.{part} offset overflows")))?;
            type_id = found.type_id;
            owner = format!("{owner}.{part}");
            last = Some(found);
        }
        let last = last.expect("split yields at least one part");
        Ok(Found {
            bit_offset,
            bitfield_size: last.bitfield_size,
            type_id: last.type_id,
        })
    }

    /// Finds `name` among the members of composite `id`, looking inside anonymous
    /// struct/union members as C does. Offsets are relative to `id`.
    fn find_member(&self, id: u32, name: &str, depth: u32) -> Result<Option<Found>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(self.malformed(format!(
                "anonymous members nest deeper than {MAX_DEPTH} at type id {id}"
            )));
        }
        let Data::Members { first, len } = self.ty(id)?.data else {
            return Ok(None);
        };
        for m in &self.members[first as usize..(first + len) as usize] {
            let member_name = self.name(m.name_off)?;
            if member_name == name {
                return self.found(m).map(Some);
            }
            if member_name.is_empty() {
                let inner = self.strip_modifiers(m.type_id)?;
                if self.is_composite(inner)?
                    && let Some(f) = self.find_member(inner, name, depth + 1)?
                {
                    return Ok(Some(Found {
                        bit_offset: m.bit_offset + f.bit_offset,
                        ..f
                    }));
                }
            }
        }
        Ok(None)
    }

    /// A member's position, also decoding the older bit-field encoding used
    /// without kind_flag: an INT type whose BTF_INT_BITS is narrower than its
    /// size, with BTF_INT_OFFSET added to the member's bit offset.
    fn found(&self, m: &Member) -> Result<Found, BtfError> {
        let mut found = Found {
            bit_offset: m.bit_offset,
            bitfield_size: m.bitfield_size,
            type_id: m.type_id,
        };
        if m.bitfield_size == 0 {
            let t = self.ty(self.strip_modifiers(m.type_id)?)?;
            if let Data::Int(encoding) = t.data {
                let bits = encoding & 0xff;
                let extra = (encoding >> 16) & 0xff;
                if bits != t.size_or_type * 8 || extra != 0 {
                    found.bitfield_size = bits;
                    found.bit_offset += extra;
                }
            }
        }
        Ok(found)
    }

    fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        let ids = self.composites.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let of_kind = |k: u8| {
            ids.iter()
                .copied()
                .filter(move |&id| self.types[id as usize].kind == k)
        };
        // Several types may share a name (rare): prefer the first real STRUCT with a
        // size, then any STRUCT, then a UNION of that name.
        of_kind(kind::STRUCT)
            .find(|&id| self.types[id as usize].size_or_type != 0)
            .or_else(|| of_kind(kind::STRUCT).next())
            .or_else(|| of_kind(kind::UNION).next())
            .ok_or_else(|| BtfError::NoStruct {
                name: name.to_owned(),
                btf: self.origin.clone(),
            })
    }

    fn ty(&self, id: u32) -> Result<&Type, BtfError> {
        match self.types.get(id as usize) {
            Some(t) if id != 0 => Ok(t),
            _ => Err(self.malformed(format!(
                "reference to type id {id}, but ids run from 1 to {}",
                self.types.len() - 1
            ))),
        }
    }

    fn is_composite(&self, id: u32) -> Result<bool, BtfError> {
        Ok(matches!(self.ty(id)?.kind, kind::STRUCT | kind::UNION))
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the type underneath.
    fn strip_modifiers(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            match self.ty(id)?.kind {
                kind::TYPEDEF | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => {
                    id = self.ty(id)?.size_or_type;
                }
                _ => return Ok(id),
            }
        }
        Err(self.malformed(format!(
            "type modifiers chain longer than {MAX_DEPTH} at type id {id}"
        )))
    }

    fn type_size(&self, id: u32) -> Result<u32, BtfError> {
        let mut id = self.strip_modifiers(id)?;
        let mut count = 1u32;
        for _ in 0..MAX_DEPTH {
            let t = self.ty(id)?;
            let size = match (t.kind, t.data) {
                (kind::ARRAY, Data::Array { elem, nelems }) => {
                    count = count
                        .checked_mul(nelems)
                        .ok_or_else(|| self.malformed(format!("array type id {id} overflows")))?;
                    id = self.strip_modifiers(elem)?;
                    continue;
                }
                // Kernel pointers have the host's width: BTF is read on the machine it describes.
                (kind::PTR, _) => size_of::<usize>() as u32,
                (
                    kind::INT
                    | kind::STRUCT
                    | kind::UNION
                    | kind::ENUM
                    | kind::ENUM64
                    | kind::FLOAT,
                    _,
                ) => t.size_or_type,
                (other, _) => {
                    return Err(self.malformed(format!("type id {id} of kind {other} has no size")));
                }
            };
            return count
                .checked_mul(size)
                .ok_or_else(|| self.malformed(format!("size of type id {id} overflows")));
        }
        Err(self.malformed(format!(
            "array nesting deeper than {MAX_DEPTH} at type id {id}"
        )))
    }

    fn name(&self, off: u32) -> Result<&str, BtfError> {
        let rest = self.strings.get(off as usize..).ok_or_else(|| {
            self.malformed(format!(
                "name offset {off} is beyond the {}-byte string section",
                self.strings.len()
            ))
        })?;
        let len = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            self.malformed(format!("name at offset {off} has no terminating NUL"))
        })?;
        std::str::from_utf8(&rest[..len])
            .map_err(|_| self.malformed(format!("name at offset {off} is not UTF-8")))
    }

    fn malformed(&self, what: String) -> BtfError {
        BtfError::Malformed {
            btf: self.origin.clone(),
            what,
        }
    }
}

/// A builder of BTF blobs for tests here and in kconfig.
/// The BTF blob of [`Btf::attach_only_with_funcs`]: each of `wanted` (id, name,
/// kind) at its id, every other id up to the highest an anonymous `void *`.
/// A FUNC's type is left 0: nothing reads its prototype from this blob.
fn slim(mut wanted: Vec<(u32, &str, u8)>) -> Vec<u8> {
    wanted.sort_unstable();
    let last = wanted.last().map_or(0, |&(id, _, _)| id);
    let mut strings = vec![0u8];
    let mut types = Vec::with_capacity(last as usize * 12);
    let mut next = wanted.iter().peekable();
    for id in 1..=last {
        let (name_off, kind) = match next.next_if(|&&(want, _, _)| want == id) {
            Some(&(_, name, kind)) => {
                let off = strings.len() as u32;
                strings.extend_from_slice(name.as_bytes());
                strings.push(0);
                (off, kind)
            }
            None => (0, kind::PTR),
        };
        // struct btf_type: name_off, info (kind << 24, vlen 0), type (0 = void).
        let info = u32::from(kind) << 24;
        for word in [name_off, info, 0] {
            types.extend_from_slice(&word.to_le_bytes());
        }
    }
    let mut blob = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
    blob.extend_from_slice(&MAGIC.to_le_bytes());
    blob.push(1); // version
    blob.push(0); // flags
    let header = [
        HEADER_LEN as u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ];
    for word in header {
        blob.extend_from_slice(&word.to_le_bytes());
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(&strings);
    blob
}

#[cfg(test)]
pub(crate) mod builder {
    pub(crate) use super::kind;
    use super::{HEADER_LEN, MAGIC};

    /// Builds BTF blobs by hand, record by record, as pahole would.
    pub(crate) struct Builder {
        types: Vec<u8>,
        pub(crate) strings: Vec<u8>,
        next_id: u32,
    }

    /// (name, type id, bit offset, bit-field size)
    pub(crate) type M<'a> = (&'a str, u32, u32, u32);

    impl Builder {
        pub(crate) fn new() -> Self {
            Builder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        pub(crate) fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        pub(crate) fn record(
            &mut self,
            name: &str,
            kind: u8,
            kind_flag: bool,
            vlen: u32,
            size_or_type: u32,
        ) -> u32 {
            let name_off = self.str(name);
            let info = (u32::from(kind_flag) << 31) | (u32::from(kind) << 24) | vlen;
            for w in [name_off, info, size_or_type] {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        pub(crate) fn word(&mut self, w: u32) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }

        pub(crate) fn int(&mut self, name: &str, size: u32) -> u32 {
            let id = self.record(name, kind::INT, false, 0, size);
            self.word(size * 8);
            id
        }

        /// A legacy (no kind_flag) bit-field INT: `bits` wide, starting `offset` bits in.
        pub(crate) fn int_bits(&mut self, name: &str, size: u32, offset: u32, bits: u32) -> u32 {
            let id = self.record(name, kind::INT, false, 0, size);
            self.word((offset << 16) | bits);
            id
        }

        pub(crate) fn ptr(&mut self, to: u32) -> u32 {
            self.record("", kind::PTR, false, 0, to)
        }

        pub(crate) fn modifier(&mut self, kind: u8, name: &str, to: u32) -> u32 {
            self.record(name, kind, false, 0, to)
        }

        pub(crate) fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
            let id = self.record("", kind::ARRAY, false, 0, 0);
            for w in [elem, index, nelems] {
                self.word(w);
            }
            id
        }

        pub(crate) fn composite(
            &mut self,
            kind: u8,
            name: &str,
            size: u32,
            kind_flag: bool,
            members: &[M],
        ) -> u32 {
            let id = self.record(name, kind, kind_flag, members.len() as u32, size);
            for &(name, ty, bit_offset, bits) in members {
                let name_off = self.str(name);
                let offset = if kind_flag {
                    (bits << 24) | bit_offset
                } else {
                    bit_offset
                };
                for w in [name_off, ty, offset] {
                    self.word(w);
                }
            }
            id
        }

        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.push(1); // version
            out.push(0); // flags
            let words = [
                HEADER_LEN as u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ];
            for w in words {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::builder::Builder;
    use super::*;
    use std::sync::OnceLock;

    /// The running kernel's BTF, parsed once for all tests.
    fn kernel() -> &'static Btf {
        static BTF: OnceLock<Btf> = OnceLock::new();
        BTF.get_or_init(|| Btf::from_sys_fs().expect("this machine has kernel BTF"))
    }

    fn kernel_release() -> String {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .expect("read /proc/sys/kernel/osrelease")
            .trim()
            .to_owned()
    }

    /// Names of the direct (not anonymous-nested) members of a struct.
    fn direct_members(btf: &Btf, struct_name: &str) -> Vec<String> {
        let id = btf.struct_id(struct_name).unwrap();
        let Data::Members { first, len } = btf.types[id as usize].data else {
            panic!("{struct_name} has no members")
        };
        btf.members[first as usize..(first + len) as usize]
            .iter()
            .map(|m| btf.name(m.name_off).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn kernel_task_struct_offsets() {
        let btf = kernel();
        let off = |m| btf.member_offset("task_struct", m).unwrap();
        let size = btf.struct_size("task_struct").unwrap();
        if kernel_release().starts_with("6.18.") {
            // Measured on this machine kind (shared TOOLCHAIN.md).
            assert_eq!(off("pid"), 1264);
            assert_eq!(off("tgid"), 1268);
            assert_eq!(off("real_parent"), 1280);
            assert_eq!(off("exit_code"), 1164);
            assert_eq!(off("start_time"), 1552);
        }
        // `pid_t pid; pid_t tgid;` are adjacent in every kernel since 2.6.
        assert_eq!(off("pid") + 4, off("tgid"));
        assert_eq!(btf.member_size("task_struct", "pid").unwrap(), 4);
        assert_eq!(btf.member_size("task_struct", "comm").unwrap(), 16);
        for m in [
            "pid",
            "real_parent",
            "comm",
            "exit_code",
            "start_boottime",
            "mm",
        ] {
            assert!(off(m) > 0 && off(m) < size, "{m} at {} in {size}", off(m));
        }
        // `start_time` and `start_boottime` are adjacent u64s.
        assert_eq!(off("start_time") + 8, off("start_boottime"));
    }

    #[test]
    fn kernel_anonymous_member_descent() {
        let btf = kernel();
        // mm_struct has wrapped its fields in an anonymous struct (`struct { ... }
        // __randomize_layout;`) since 4.19: arg_start is only reachable through it.
        let direct = direct_members(btf, "mm_struct");
        assert!(!direct.iter().any(|m| m == "arg_start"), "{direct:?}");
        let start = btf.member_offset("mm_struct", "arg_start").unwrap();
        let end = btf.member_offset("mm_struct", "arg_end").unwrap();
        assert_eq!(start + 8, end, "unsigned long arg_start, arg_end;");
        assert!(end + 8 <= btf.struct_size("mm_struct").unwrap());
        // The same offset by hand: the anonymous member's, plus arg_start's in it.
        let id = btf.struct_id("mm_struct").unwrap();
        let Data::Members { first, len } = btf.types[id as usize].data else {
            panic!("mm_struct has no members")
        };
        let by_hand: Vec<u32> = btf.members[first as usize..(first + len) as usize]
            .iter()
            .filter(|m| m.name_off == 0)
            .filter_map(|anon| {
                let inner = btf.strip_modifiers(anon.type_id).unwrap();
                let Data::Members { first, len } = btf.types[inner as usize].data else {
                    return None;
                };
                btf.members[first as usize..(first + len) as usize]
                    .iter()
                    .find(|m| btf.name(m.name_off).unwrap() == "arg_start")
                    .map(|m| (anon.bit_offset + m.bit_offset) / 8)
            })
            .collect();
        assert_eq!(by_hand, [start]);
    }

    #[test]
    fn kernel_dotted_path_and_bitfield() {
        let btf = kernel();
        assert_eq!(btf.member_offset("k_sigaction", "sa").unwrap(), 0);
        let handler = btf.member_offset("k_sigaction", "sa.sa_handler").unwrap();
        let flags = btf.member_offset("k_sigaction", "sa.sa_flags").unwrap();
        assert_eq!(
            flags - handler,
            btf.member_offset("sigaction", "sa_flags").unwrap()
                - btf.member_offset("sigaction", "sa_handler").unwrap()
        );
        assert!(flags < btf.struct_size("k_sigaction").unwrap());
        // signal_struct.live is an atomic_t; its counter sits at the member offset.
        assert_eq!(
            btf.member_offset("signal_struct", "live.counter").unwrap(),
            btf.member_offset("signal_struct", "live").unwrap()
        );
        let (byte, mask) = btf
            .bitfield_byte_mask("signal_struct", "is_child_subreaper")
            .unwrap();
        assert_eq!(mask.count_ones(), 1, "1-bit field, mask {mask:#x}");
        assert!(byte < btf.struct_size("signal_struct").unwrap());
        // The neighbouring flag is a different bit (of the same or the next byte).
        let (byte2, mask2) = btf
            .bitfield_byte_mask("signal_struct", "has_child_subreaper")
            .unwrap();
        assert_ne!((byte, mask), (byte2, mask2));
        assert!(matches!(
            btf.member_offset("signal_struct", "is_child_subreaper"),
            Err(BtfError::BitField { .. })
        ));
    }

    #[test]
    fn kernel_errors_name_the_object() {
        let btf = kernel();
        let e = btf
            .member_offset("task_struct", "no_such_member")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "task_struct has no member no_such_member in /sys/kernel/btf/vmlinux"
        );
        let e = btf.struct_size("no_such_struct_xyz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "struct no_such_struct_xyz not found in /sys/kernel/btf/vmlinux"
        );
        let e = btf.member_offset("k_sigaction", "sa.nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "k_sigaction.sa has no member nope in /sys/kernel/btf/vmlinux"
        );
        let e = btf.member_offset("task_struct", "pid.x").unwrap_err();
        assert!(matches!(e, BtfError::NotComposite { .. }), "{e}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = Btf::from_file(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel BTF not found at /nonexistent/vmlinux: tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF"
        );
    }

    #[test]
    fn empty_file_says_what_to_do() {
        assert_eq!(
            err_of(&[]),
            "BTF data is empty: the kernel exposes no BTF; boot a kernel built with CONFIG_DEBUG_INFO_BTF"
        );
    }

    /// What aya finds in the slim blob is what the full BTF says, for the
    /// tracepoints the loader attaches and at the ids the kernel checks.
    #[test]
    fn kernel_attach_only_keeps_typedef_ids() {
        let btf = kernel();
        let names = [
            "btf_trace_sched_process_fork",
            "btf_trace_sched_process_exit",
            "btf_trace_task_newtask",
        ];
        let blob = btf.attach_only(&names).unwrap();
        let slim = aya::Btf::parse(&blob, aya::Endianness::default()).unwrap();
        for name in names {
            let id = btf.typedef_id(name).unwrap();
            assert!(id > 1000, "{name} at {id}: too early to test the padding");
            let found = slim
                .id_by_type_name_kind(name, aya_obj::btf::BtfKind::Typedef)
                .unwrap();
            assert_eq!(found, id, "{name}");
        }
        // Our own reader walks it too, with the same ids.
        let back = Btf::parse(&blob).unwrap();
        assert_eq!(
            back.typedef_id(names[1]).unwrap(),
            btf.typedef_id(names[1]).unwrap()
        );
        // One 12-byte record per id up to the last typedef, plus the names.
        assert!(blob.len() < btf.types.len() * 12 + 200, "{}", blob.len());
        let e = btf
            .attach_only(&["btf_trace_no_such_tracepoint"])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "typedef btf_trace_no_such_tracepoint not found in /sys/kernel/btf/vmlinux: \
             this kernel lacks the tracepoint it names"
        );
    }

    /// A small kernel-like world:
    /// struct atomic { int counter; };
    /// struct task { int pid; int tgid; union { struct { long a; long start; }; long alias; };
    ///               const struct atomic live; struct task *parent; char comm[16]; };
    /// struct sig { int flags; unsigned int quick:1, sub:1, has:1; unsigned int mid:4 (bits 14..18);
    ///              bool plain; int wide:7 (bits 70..77) };       (kind_flag bit fields)
    /// struct old { unsigned int f:1 at bit 3 (legacy INT encoding) };
    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let long = b.int("long", 8);
        let ch = b.int("char", 1);
        let boolean = b.int("_Bool", 1);
        let atomic = b.composite(kind::STRUCT, "atomic", 4, false, &[("counter", int, 0, 0)]);
        let atomic_t = b.modifier(kind::TYPEDEF, "atomic_t", atomic);
        let const_atomic = b.modifier(kind::CONST, "", atomic_t);
        let inner = b.composite(
            kind::STRUCT,
            "",
            16,
            false,
            &[("a", long, 0, 0), ("start", long, 64, 0)],
        );
        let anon = b.composite(
            kind::UNION,
            "",
            16,
            false,
            &[("", inner, 0, 0), ("alias", long, 0, 0)],
        );
        let volatile_anon = b.modifier(kind::VOLATILE, "", anon);
        let fwd_task = b.record("task", kind::FWD, false, 0, 0);
        let task_ptr = b.ptr(fwd_task);
        let idx = int;
        let comm = b.array(ch, idx, 16);
        // A zero-sized struct of the same name first: the lookup must skip it.
        b.composite(kind::STRUCT, "task", 0, false, &[]);
        b.composite(
            kind::STRUCT,
            "task",
            56,
            false,
            &[
                ("pid", int, 0, 0),
                ("tgid", int, 32, 0),
                ("", volatile_anon, 64, 0),
                ("live", const_atomic, 192, 0),
                ("parent", task_ptr, 256, 0),
                ("comm", comm, 320, 0),
            ],
        );
        let uint = b.int("unsigned int", 4);
        b.composite(
            kind::STRUCT,
            "sig",
            16,
            true,
            &[
                ("flags", int, 0, 0),
                ("quick", uint, 32, 1),
                ("sub", uint, 33, 1),
                ("has", uint, 34, 1),
                ("mid", uint, 46, 4),
                ("plain", boolean, 64, 0),
                ("wide", int, 70, 7),
            ],
        );
        let legacy = b.int_bits("unsigned int", 4, 0, 1);
        b.composite(kind::STRUCT, "old", 4, false, &[("f", legacy, 3, 0)]);
        // Records of every other kind, so the walk must skip their trailers right.
        let e = b.record("e", kind::ENUM, false, 2, 4);
        b.word(0);
        b.word(0);
        b.word(0);
        b.word(1);
        let _ = e;
        let proto = b.record("", kind::FUNC_PROTO, false, 1, int);
        b.word(0);
        b.word(int);
        b.record("f", kind::FUNC, false, 0, proto);
        b.record("v", kind::VAR, false, 0, int);
        b.word(1);
        b.record(".data", kind::DATASEC, false, 1, 8);
        for w in [1, 0, 4] {
            b.word(w);
        }
        b.record("float", kind::FLOAT, false, 0, 4);
        b.record("tag", kind::DECL_TAG, false, 0, int);
        b.word(u32::MAX);
        b.record("tt", kind::TYPE_TAG, false, 0, int);
        b.record("e64", kind::ENUM64, false, 1, 8);
        for w in [0, 1, 0] {
            b.word(w);
        }
        b.modifier(kind::RESTRICT, "", task_ptr);
        // Declared last: proves nothing before it was mis-walked.
        b.composite(kind::STRUCT, "after", 8, false, &[("x", long, 0, 0)]);
        b.build()
    }

    #[test]
    fn built_offsets_and_anonymous_descent() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.struct_size("task").unwrap(), 56);
        assert_eq!(btf.member_offset("task", "pid").unwrap(), 0);
        assert_eq!(btf.member_offset("task", "tgid").unwrap(), 4);
        // Through volatile anonymous union, then anonymous struct.
        assert_eq!(btf.member_offset("task", "start").unwrap(), 16);
        assert_eq!(btf.member_offset("task", "alias").unwrap(), 8);
        assert_eq!(btf.member_size("task", "start").unwrap(), 8);
        // Dotted path through const typedef'd struct.
        assert_eq!(btf.member_offset("task", "live").unwrap(), 24);
        assert_eq!(btf.member_offset("task", "live.counter").unwrap(), 24);
        assert_eq!(btf.member_offset("task", "parent").unwrap(), 32);
        assert_eq!(btf.member_size("task", "parent").unwrap(), 8);
        assert_eq!(btf.member_offset("task", "comm").unwrap(), 40);
        assert_eq!(btf.member_size("task", "comm").unwrap(), 16);
        assert_eq!(btf.struct_size("after").unwrap(), 8);
        assert_eq!(btf.member_offset("after", "x").unwrap(), 0);
    }

    #[test]
    fn built_bitfields() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.bitfield_byte_mask("sig", "quick").unwrap(), (4, 0x01));
        assert_eq!(btf.bitfield_byte_mask("sig", "sub").unwrap(), (4, 0x02));
        assert_eq!(btf.bitfield_byte_mask("sig", "has").unwrap(), (4, 0x04));
        // Bits 46..50: byte 5, bits 6..7 and byte 6 bits 0..1: spans two bytes.
        assert!(matches!(
            btf.bitfield_byte_mask("sig", "mid"),
            Err(BtfError::NotByteField { bits: 4, .. })
        ));
        assert_eq!(btf.bitfield_byte_mask("sig", "plain").unwrap(), (8, 0xff));
        // Bits 70..77 span bytes 8 and 9.
        assert!(btf.bitfield_byte_mask("sig", "wide").is_err());
        assert!(matches!(
            btf.bitfield_byte_mask("sig", "flags"),
            Err(BtfError::NotByteField { bits: 0, .. })
        ));
        assert_eq!(btf.member_offset("sig", "flags").unwrap(), 0);
        let e = btf.member_offset("sig", "sub").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sig.sub is a bit field in BTF data: it has no byte offset (use bitfield_byte_mask)"
        );
        // Legacy encoding: the INT type carries the width.
        assert_eq!(btf.bitfield_byte_mask("old", "f").unwrap(), (0, 0x08));
        assert!(btf.member_offset("old", "f").is_err());
    }

    #[test]
    fn built_error_paths() {
        let good = sample();
        let err = |bytes: &[u8]| Btf::parse(bytes).unwrap_err().to_string();

        let mut bad = good.clone();
        bad[0] = 0x12;
        assert_eq!(
            err(&bad),
            "BTF data is not BTF: magic is 0xeb12, expected 0xeb9f"
        );
        let mut be = good.clone();
        be.swap(0, 1);
        assert_eq!(
            err(&be),
            "BTF data is big-endian BTF; tracer reads little-endian BTF only"
        );

        assert!(err(&good[..1]).starts_with("BTF data is truncated: 1 bytes"));
        assert!(
            err(&good[..10]).contains("shorter than the 24-byte header"),
            "{}",
            err(&good[..10])
        );
        // Cut inside the string section, then inside the type section.
        assert!(err(&good[..good.len() - 1]).contains("string section"));
        assert!(err(&good[..HEADER_LEN + 20]).contains("type section"));

        // Type section length cut mid-record: the section header is consistent
        // but the last record's members run past it.
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.composite(
            kind::STRUCT,
            "s",
            8,
            false,
            &[("a", int, 0, 0), ("b", int, 32, 0)],
        );
        let mut blob = b.build();
        let type_len = u32::from_le_bytes(blob[12..16].try_into().unwrap()) - 4;
        blob[12..16].copy_from_slice(&type_len.to_le_bytes());
        let e = err(&blob);
        assert_eq!(
            e,
            "BTF data is truncated: type id 2 at byte 16 runs past the end of the 48-byte type section"
        );

        let mut b = Builder::new();
        b.record("x", 31, false, 0, 0);
        assert_eq!(
            err(&b.build()),
            "BTF data is malformed: type id 1 at byte 0 has unknown kind 31"
        );

        let mut bad_hdr = good.clone();
        bad_hdr[4] = 8;
        assert!(err(&bad_hdr).contains("header length 8"));

        let btf = Btf::parse(&good).unwrap();
        assert_eq!(
            btf.struct_size("nope").unwrap_err().to_string(),
            "struct nope not found in BTF data"
        );
        assert_eq!(
            btf.member_offset("task", "nope").unwrap_err().to_string(),
            "task has no member nope in BTF data"
        );
        assert_eq!(
            btf.member_offset("task", "live.nope")
                .unwrap_err()
                .to_string(),
            "task.live has no member nope in BTF data"
        );
        assert_eq!(
            btf.member_offset("task", "pid.x").unwrap_err().to_string(),
            "task.pid is not a struct or union in BTF data, so it has no member x"
        );
        // Anonymous members are not names: "" never matches a member.
        assert!(btf.member_offset("task", "").is_err());
        assert!(btf.member_offset("task", "live.").is_err());
    }

    #[test]
    fn built_dangling_and_cyclic_types() {
        // A member whose type id does not exist.
        let mut b = Builder::new();
        b.composite(kind::STRUCT, "s", 8, false, &[("", 99, 0, 0)]);
        let btf = Btf::parse(&b.build()).unwrap();
        let e = btf.member_offset("s", "x").unwrap_err().to_string();
        assert!(e.contains("type id 99"), "{e}");

        // A typedef that refers to itself.
        let mut b = Builder::new();
        let t = b.modifier(kind::TYPEDEF, "loop", 2);
        assert_eq!(t, 1);
        b.modifier(kind::TYPEDEF, "loop2", 1);
        b.composite(kind::STRUCT, "s", 8, false, &[("", 1, 0, 0)]);
        let btf = Btf::parse(&b.build()).unwrap();
        let e = btf.member_offset("s", "x").unwrap_err().to_string();
        assert!(e.contains("modifiers chain longer"), "{e}");

        // A name offset past the string section.
        let mut b = Builder::new();
        b.record("s", kind::STRUCT, false, 0, 4);
        let mut blob = b.build();
        blob[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&1000u32.to_le_bytes());
        let e = err_of(&blob);
        assert!(e.contains("name offset 1000 is beyond"), "{e}");
    }

    fn err_of(bytes: &[u8]) -> String {
        Btf::parse(bytes).unwrap_err().to_string()
    }
}
