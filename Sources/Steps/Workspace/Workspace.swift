import Engine
import Foundation

/// A plan together with its state directory (`<state-root>/<plan name>/`): what every
/// `provision` command works on.
public struct Workspace: Sendable {
    /// The plan as loaded from disk now.
    public let plan: Plan
    /// The exact text `plan` was parsed from; a run stores it so `resume` continues that plan.
    public let planText: String
    /// Where the plan's store, logs and files live (created 0700).
    public let stateDirectory: URL

    /// Loads the plan at `planPath`; the state directory is `stateRoot/<plan name>`.
    public init(planPath: String, stateRoot: String) throws {
        (plan, planText) = try PlanLoader.loadWithText(path: planPath)
        stateDirectory = URL(fileURLWithPath: stateRoot, isDirectory: true).appendingPathComponent(plan.name, isDirectory: true)
    }

    /// Whether a run store exists yet.
    public var hasStore: Bool {
        FileManager.default.fileExists(atPath: stateDirectory.appendingPathComponent(SQLiteRunStore.fileName).path)
    }

    /// Opens (creating) the run store.
    public func openStore() throws -> SQLiteRunStore {
        try FileManager.default.createDirectory(at: stateDirectory.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return try SQLiteRunStore(directory: stateDirectory)
    }

    /// The log file of a step.
    public func logFile(for step: StepID) -> URL {
        stateDirectory.appendingPathComponent("logs").appendingPathComponent(Executor.logFileName(step))
    }
}
