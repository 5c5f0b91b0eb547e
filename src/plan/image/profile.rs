//! Whether an agent binary is a debug or a release build of kovenant, from a mark every kovenant
//! executable carries, and the warning a debug build draws.
use std::hint::black_box;

/// What goes before the profile's name in the mark.
const MARK_PREFIX: &[u8] = b"\0kovenant-build-profile=";

/// The mark, as this build carries it: the prefix, the profile, a NUL. Read through
/// [`this_build`] so the linker keeps it in every kovenant executable.
#[cfg(debug_assertions)]
static MARK: &[u8] = b"\0kovenant-build-profile=debug\0";
#[cfg(not(debug_assertions))]
static MARK: &[u8] = b"\0kovenant-build-profile=release\0";

/// How a kovenant executable was compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build`: no optimisation, overflow checks, full debug info.
    Debug,
    Release,
}

/// This executable's own profile (and the reason the mark stays in it).
pub fn this_build() -> Option<Profile> {
    profile_of(black_box(MARK))
}

/// The profile `bytes` (an executable) was built with, when it is a kovenant that carries the
/// mark; `None` for anything else (an older kovenant, another program).
pub fn profile_of(bytes: &[u8]) -> Option<Profile> {
    memchr::memmem::find_iter(bytes, MARK_PREFIX).find_map(|at| {
        let rest = &bytes[at + MARK_PREFIX.len()..];
        if rest.starts_with(b"debug\0") {
            Some(Profile::Debug)
        } else if rest.starts_with(b"release\0") {
            Some(Profile::Release)
        } else {
            None
        }
    })
}

/// The warning a debug build draws, naming its size (bytes) and what it costs; `None` for any
/// other. `what` names the binary ("this kovenant (PATH)", "--agent-binary PATH"). The factor is
/// measured in docs/image-notes.md ("A debug agent").
pub fn debug_warning(profile: Option<Profile>, size: usize, what: &str) -> Option<String> {
    (profile == Some(Profile::Debug)).then(|| {
        format!(
            "{what} is a debug build ({} MB): the image carries all of it, and its agent spends \
             about 28 times the CPU of a release build on the same events",
            size.div_ceil(1_000_000)
        )
    })
}

/// What to do about a debug build.
pub const DEBUG_HINT: &str =
    "build the agent with `cargo build --release` and pass --agent-binary target/release/kovenant";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_tells_debug_from_release_and_anything_else_from_both() {
        let debug = [
            b"\x7fELF...".as_slice(),
            b"\0kovenant-build-profile=debug\0rest",
        ]
        .concat();
        let release = [b"\x7fELF".as_slice(), b"\0kovenant-build-profile=release\0"].concat();
        assert_eq!(profile_of(&debug), Some(Profile::Debug));
        assert_eq!(profile_of(&release), Some(Profile::Release));
        // The prefix alone (the needle in a binary's read-only data) is no mark.
        let needle_only = [MARK_PREFIX, b"kovenant-build-profile=".as_slice()].concat();
        assert_eq!(profile_of(&needle_only), None);
        assert_eq!(profile_of(b"\x7fELF and nothing else"), None);
    }

    #[test]
    fn a_debug_build_is_named_with_its_size() {
        assert_eq!(
            debug_warning(Some(Profile::Debug), 2_500_000, "--agent-binary a").as_deref(),
            Some(
                "--agent-binary a is a debug build (3 MB): the image carries all of it, and its \
                 agent spends about 28 times the CPU of a release build on the same events"
            )
        );
        assert_eq!(debug_warning(Some(Profile::Release), 1, "x"), None);
        assert_eq!(debug_warning(None, 1, "x"), None);
    }

    #[test]
    fn this_build_carries_its_own_mark() {
        let want = if cfg!(debug_assertions) {
            Profile::Debug
        } else {
            Profile::Release
        };
        assert_eq!(this_build(), Some(want));
    }
}
