import App
import ArgumentParser
import Engine
import Foundation
import JSON
import PlanLanguage

/// Prints an error the way every command does (text on stderr; also JSON on stdout with
/// `--json`) and returns the exit code that names its kind.
func report(_ error: any Error, json: Bool) -> ExitCode {
    let code: ExitCode
    switch error {
    case is PlanError, is GraphError, is ValidationError: code = ExitCodes.invalidInput
    case let state as StateDirectoryError: code = state.isBadArgument ? ExitCodes.invalidInput : ExitCodes.storeFailure
    case is LockError, is LeftoverChildError: code = ExitCodes.locked
    case is StoreError: code = ExitCodes.storeFailure
    case is NothingToResume: code = ExitCodes.nothingToResume
    case let exit as ExitCode: return exit
    default: code = ExitCodes.stepFailed
    }
    let text = String(describing: error)
    FileHandle.standardError.write(Data("provision: \(text)\n".utf8))
    if json {
        let object: JSONValue = ["kind": "error", "message": .string(text), "exit_code": .int(Int(code.rawValue))]
        FileHandle.standardOutput.write(object.compactData + Data("\n".utf8))
    }
    return code
}

/// Runs `body`, turning any error into its documented exit code.
func withExitCodes(json: Bool, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        throw report(error, json: json)
    }
}
