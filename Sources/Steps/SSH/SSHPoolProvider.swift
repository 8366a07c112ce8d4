import Engine

/// One SSH pool shared by every step of a graph, created on first use with the run's store
/// (where host keys are pinned).
public actor SSHPoolProvider {
    private var pool: SSHPool?
    private let parallelism: Int

    /// A provider whose pool works on at most `parallelism` hosts at once.
    public init(parallelism: Int = 10) {
        self.parallelism = parallelism
    }

    /// The shared pool.
    public func pool(_ store: any RunStore) -> SSHPool {
        if let pool { return pool }
        let created = SSHPool(store: store, parallelism: parallelism)
        pool = created
        return created
    }
}
