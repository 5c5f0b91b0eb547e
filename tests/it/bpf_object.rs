//! The agent embeds `src/agent/kernel/bpf/closes.bpf.o` (so building kovenant needs no clang):
//! it must be what its source builds to, with the script beside it and Debian 12's clang 14.
use std::path::Path;
use std::process::Command;

#[test]
fn the_embedded_bpf_object_is_built_from_its_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/agent/kernel/bpf");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("closes.bpf.o");
    let run = Command::new("bash")
        .arg(dir.join("build.sh"))
        .arg(&out)
        .output()
        .expect("bash");
    assert!(
        run.status.success(),
        "build.sh failed (it needs clang and llvm-strip: apt-get install clang llvm): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let built = std::fs::read(&out).expect("built object");
    let committed = std::fs::read(dir.join("closes.bpf.o")).expect("committed object");
    assert!(
        built == committed,
        "closes.bpf.o is not what closes.bpf.c builds to ({} bytes built, {} committed): run \
         src/agent/kernel/bpf/build.sh and commit the object",
        built.len(),
        committed.len()
    );
}
