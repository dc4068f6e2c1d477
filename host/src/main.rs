fn main() -> std::process::ExitCode {
    kubeforge::cli::main()
}
