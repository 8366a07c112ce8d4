@testable import App
import Digest
import Engine
import Foundation
@testable import NodeRuntime
import Testing
@testable import Transport

/// Local files' digests, computed once per version of a file and shared by callers asking at once.
struct LocalDigestsTests {
    @Test func callersAskingAtOnceShareOneDigestAndAChangedFileGetsItsNewOne() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("first version\n".utf8).write(to: URL(fileURLWithPath: path))
        let digests = LocalDigests(), here = LocalCommandRunner(processes: ProcessSupervisor())
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await digests.digest(of: path, here: here) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(answers) == [SHA256.hex("first version\n")], "twenty callers, one digest, the file's")

        // Rewritten (another size, a new modification time): not the cached answer.
        try Data("the second version\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try await digests.digest(of: path, here: here) == SHA256.hex("the second version\n"))
        await #expect(throws: (any Error).self) { try await digests.digest(of: path + ".missing", here: here) }
    }
}
