fn main() {
    std::process::exit(orrery::cli::main());
}
