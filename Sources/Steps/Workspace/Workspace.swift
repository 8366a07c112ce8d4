import Engine
import Foundation
import PlanLanguage

/// A plan together with its state directory (`<state-root>/<plan name>/`): what every
/// `provision` command works on.
public struct Workspace: Sendable {
    /// The plan as loaded from disk now, or as a run stored it when the file is gone.
    public let plan: Plan
    /// The exact text `plan` was parsed from; a run stores it so `resume` continues that plan.
    public let planText: String
    /// Where the plan's store, logs and files live (created 0700).
    public let stateDirectory: URL
    /// The run whose stored plan text is used because the plan file no longer exists, if so.
    public let storedPlanRun: Int64?

    /// Loads the plan at `planPath`; the state directory is `stateRoot/<plan name>`.
    /// - Parameter storedPlanIfMissing: when the plan file does not exist, find its state under
    ///   `stateRoot` (by the plan path the last run recorded, else by the file's base name, the
    ///   default plan name) and use the plan text that run stored.
    public init(planPath: String, stateRoot: String, storedPlanIfMissing: Bool = false) throws {
        try Self.checkStateRoot(stateRoot)
        do {
            (plan, planText) = try PlanLoader.loadWithText(path: planPath)
            storedPlanRun = nil
        } catch let error as PlanError where storedPlanIfMissing && !FileManager.default.fileExists(atPath: planPath) {
            guard let (_, run) = Self.storedState(planPath: planPath, stateRoot: stateRoot) else { throw error }
            plan = try PlanLoader.parse(Data(run.planText.utf8), path: run.planPath)
            planText = run.planText
            storedPlanRun = run.id
        }
        stateDirectory = URL(fileURLWithPath: stateRoot, isDirectory: true).appendingPathComponent(plan.name, isDirectory: true)
    }

    /// Whether a run store exists yet.
    public var hasStore: Bool {
        FileManager.default.fileExists(atPath: stateDirectory.appendingPathComponent(SQLiteRunStore.fileName).path)
    }

    /// Whether any run was ever recorded for this plan; never creates the store.
    public func hasRun() throws -> Bool {
        hasStore ? try openStore().lastRun() != nil : false
    }

    /// Opens (creating) the run store.
    public func openStore() throws -> SQLiteRunStore {
        try Self.makeDirectory(stateDirectory, stateRoot: stateDirectory.deletingLastPathComponent().path)
        return try SQLiteRunStore(directory: stateDirectory)
    }

    /// The log file of a step.
    public func logFile(for step: StepID) -> URL {
        stateDirectory.appendingPathComponent("logs").appendingPathComponent(Executor.logFileName(step))
    }

    /// Refuses a state root that exists and is not a directory.
    static func checkStateRoot(_ stateRoot: String) throws {
        var path = URL(fileURLWithPath: stateRoot).standardizedFileURL
        while path.path != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else { throw StateDirectoryError.notADirectory(path: path.path, stateRoot: stateRoot) }
                return
            }
            path.deleteLastPathComponent()
        }
    }

    /// Creates `directory` and its missing parents 0700, and checks that it can be written.
    static func makeDirectory(_ directory: URL, stateRoot: String) throws {
        var missing: [String] = []
        var path = directory.standardizedFileURL
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), path.path != "/" {
            missing.insert(path.path, at: 0)
            path.deleteLastPathComponent()
        }
        guard isDirectory.boolValue else { throw StateDirectoryError.notADirectory(path: path.path, stateRoot: stateRoot) }
        for component in missing where mkdir(component, 0o700) != 0 {
            let code = errno
            // Another command may have created it a moment ago.
            guard code == EEXIST else { throw StateDirectoryError.notWritable(path: component, reason: String(cString: strerror(code))) }
        }
        guard access(directory.path, W_OK | X_OK) == 0 else {
            let code = errno
            throw StateDirectoryError.notWritable(path: directory.path, reason: String(cString: strerror(code)))
        }
    }

    /// The state and last run of a plan whose file is gone: the store whose last run recorded
    /// `planPath`, else the one in the folder named after the file's base name.
    static func storedState(planPath: String, stateRoot: String) -> (URL, RunRecord)? {
        let root = URL(fileURLWithPath: stateRoot, isDirectory: true)
        let wanted = URL(fileURLWithPath: planPath).standardizedFileURL.path
        let baseName = URL(fileURLWithPath: planPath).deletingPathExtension().lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        var byPath: (URL, RunRecord)?
        var byName: (URL, RunRecord)?
        for name in names.sorted() {
            let directory = root.appendingPathComponent(name, isDirectory: true)
            guard FileManager.default.fileExists(atPath: directory.appendingPathComponent(SQLiteRunStore.fileName).path),
                  let run = try? SQLiteRunStore(directory: directory).lastRun() else { continue }
            if URL(fileURLWithPath: run.planPath).standardizedFileURL.path == wanted, run.startedAt > (byPath?.1.startedAt ?? .distantPast) {
                byPath = (directory, run)
            }
            if name == baseName { byName = (directory, run) }
        }
        return byPath ?? byName
    }
}
