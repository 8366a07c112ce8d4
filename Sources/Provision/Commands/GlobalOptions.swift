import ArgumentParser

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The plan file.")
    var plan: String = "plans/sandbox.yaml"

    @Option(name: .long, help: "Root of the state directories; the plan's state lives in <state-dir>/<plan name>/.")
    var stateDir: String = "state"

    @Flag(name: .long, help: "Print JSON (one event per line while running) instead of text.")
    var json = false
}

/// Options of the commands that run steps (`up`, `resume`, `down`).
struct RunOptions: ParsableArguments {
    @Option(help: "Most steps running at once (default: the plan's, else 10).")
    var parallelism: Int?
}
