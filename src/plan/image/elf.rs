//! What kind of executable a file is: a Linux ELF for amd64 or arm64, or something the image cannot run.
use std::fmt;

/// A CPU architecture the telegraf-tetragon image is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// From the daemon's `Arch` (`/version`: `amd64`, `arm64`) or `Architecture` (`/info`:
    /// `x86_64`, `aarch64`).
    pub fn from_docker(name: &str) -> Option<Arch> {
        match name {
            "amd64" | "x86_64" => Some(Arch::Amd64),
            "arm64" | "aarch64" | "arm64/v8" => Some(Arch::Arm64),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an executable file is, as far as its header tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// A 64-bit little-endian ELF executable or shared object; `arch` is `None` for machines other
    /// than x86-64 and AArch64 (`machine` is ELF's `e_machine`).
    Elf64 { arch: Option<Arch>, machine: u16 },
    /// A 32-bit or big-endian ELF, or an ELF that is not an executable.
    OtherElf,
    /// A macOS (Mach-O) executable.
    MachO,
    /// A Windows (PE) executable.
    Pe,
    /// Not an executable kovenant recognises.
    Unknown,
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

impl BinaryKind {
    /// Reads the header of an executable (the first 64 bytes are enough).
    pub fn of(bytes: &[u8]) -> BinaryKind {
        match bytes {
            [0x7f, b'E', b'L', b'F', ..] => elf(bytes),
            [0xcf, 0xfa, 0xed, 0xfe, ..]
            | [0xfe, 0xed, 0xfa, 0xcf, ..]
            | [0xca, 0xfe, 0xba, 0xbe, ..] => BinaryKind::MachO,
            [b'M', b'Z', ..] => BinaryKind::Pe,
            _ => BinaryKind::Unknown,
        }
    }

    /// The architecture when this is a Linux executable the image can run.
    pub fn linux_arch(self) -> Option<Arch> {
        match self {
            BinaryKind::Elf64 { arch, .. } => arch,
            _ => None,
        }
    }

    /// Words for an error message: "a Linux amd64 executable", "a macOS executable", ...
    pub fn describe(self) -> String {
        match self {
            BinaryKind::Elf64 {
                arch: Some(arch), ..
            } => format!("a Linux {arch} executable"),
            BinaryKind::Elf64 { machine, .. } => {
                format!("an ELF executable for machine type {machine}")
            }
            BinaryKind::OtherElf => "a 32-bit, big-endian or non-executable ELF file".into(),
            BinaryKind::MachO => "a macOS executable".into(),
            BinaryKind::Pe => "a Windows executable".into(),
            BinaryKind::Unknown => "not an executable".into(),
        }
    }
}

fn elf(bytes: &[u8]) -> BinaryKind {
    // e_ident: class at 4 (2 = 64-bit), data at 5 (1 = little-endian); e_type at 16, e_machine at 18.
    let (Some(&class), Some(&data), Some(e_type), Some(machine)) = (
        bytes.get(4),
        bytes.get(5),
        u16_le(bytes, 16),
        u16_le(bytes, 18),
    ) else {
        return BinaryKind::OtherElf;
    };
    // ET_EXEC (2) or ET_DYN (3: position-independent executables).
    if class != 2 || data != 1 || !(e_type == 2 || e_type == 3) {
        return BinaryKind::OtherElf;
    }
    let arch = match machine {
        EM_X86_64 => Some(Arch::Amd64),
        EM_AARCH64 => Some(Arch::Arm64),
        _ => None,
    };
    BinaryKind::Elf64 { arch, machine }
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([pair[0], pair[1]]))
}
