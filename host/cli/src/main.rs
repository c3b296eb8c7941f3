//! The `plugin-host` binary: the command line of [`plugin_host_cli::cli`], and runner mode.

fn main() -> std::process::ExitCode {
    plugin_host_cli::cli::main()
}
