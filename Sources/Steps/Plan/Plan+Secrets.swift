import Foundation

extension Plan {
    /// Reads every secret from its source.
    /// - Throws: `PlanError` naming the secret and the variable or file that is missing.
    public func resolveSecrets(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        var values: [String: String] = [:]
        for (name, source) in secrets {
            switch source {
            case .environment(let variable):
                guard let value = environment[variable], !value.isEmpty else {
                    throw PlanError(file: path, message: "secret '\(name)' comes from the environment variable \(variable), which is not set",
                                    hint: "export \(variable)=... before running provision")
                }
                values[name] = value
            case .file(let file):
                let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : directory.appendingPathComponent(file)
                guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
                    throw PlanError(file: path, message: "secret '\(name)' comes from \(url.path), which cannot be read",
                                    hint: "create the file (mode 0600) or fix the path")
                }
                values[name] = text.hasSuffix("\n") ? String(text.dropLast()) : text
            }
        }
        return values
    }
}
