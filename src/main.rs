fn main() -> std::process::ExitCode {
    flannel_gen::cli::main()
}
