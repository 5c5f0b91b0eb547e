//! Entry point: hand the arguments to the library and turn its result into an exit code.
fn main() -> std::process::ExitCode {
    kovenant::main()
}
