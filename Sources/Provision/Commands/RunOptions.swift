import ArgumentParser

/// Options of the commands that run steps (`up`, `resume`, `down`). `--parallelism` bounds both
/// the steps running at once and the SSH sessions open at once.
struct RunOptions: ParsableArguments {
    /// The range the plan's `parallelism:` allows too.
    static let parallelismRange = 1...256

    @Option(help: "Most steps running at once, 1-256 (default: the plan's, else 10).")
    var parallelism: Int?

    func validate() throws {
        if let parallelism, !Self.parallelismRange.contains(parallelism) {
            throw ValidationError("--parallelism must be from 1 to 256, not \(parallelism)")
        }
    }
}
