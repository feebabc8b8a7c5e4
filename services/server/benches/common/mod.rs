//! What the benchmarks share.

/// The value after `--name` on the command line (cargo bench passes its own flags too), or `default`.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("a value after {name}")),
        None => default,
    }
}
