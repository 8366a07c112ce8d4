import Foundation
import Testing
@testable import Engine

@Suite struct RunStoreTests {
    @Test func storeFileIs0600InsideA0700Directory() throws {
        let root = TemporaryDirectory()
        let directory = root.url.appendingPathComponent("plan")
        _ = try SQLiteRunStore(directory: directory)
        let fm = FileManager.default
        #expect((try fm.attributesOfItem(atPath: directory.path)[.posixPermissions] as? Int) == 0o700)
        let file = directory.appendingPathComponent(SQLiteRunStore.fileName).path
        #expect((try fm.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)
    }

    @Test func reopeningMigratesOnceAndKeepsData() throws {
        let root = TemporaryDirectory()
        let first = try SQLiteRunStore(directory: root.url)
        let run = try first.beginRun(command: .up, planPath: "p.yaml", planText: "name: p")
        try first.markRunning("a", run: run.id, attempt: 1, fingerprint: "f")
        let second = try SQLiteRunStore(directory: root.url)
        #expect(try second.lastRun()?.planText == "name: p")
        #expect(try second.steps()["a"]?.state == .running)
        #expect(try second.integrityCheck() == "ok")
    }

    @Test func anAttemptAKilledRunLeftRunningIsRecordedInterruptedWhenTheNextAttemptStarts() throws {
        let root = TemporaryDirectory()
        let store = try SQLiteRunStore(directory: root.url)
        let run = try store.beginRun(command: .up, planPath: "p.yaml", planText: "name: p")
        try store.markRunning("a", run: run.id, attempt: 1, fingerprint: "f")
        // provision is killed here; the resumed run applies the step again.
        try store.markRunning("a", run: run.id, attempt: 2, fingerprint: "f")
        try store.markSucceeded("a", run: run.id, fingerprint: "f", outputs: [:], duration: .zero, adopted: false)
        #expect(try store.attempts(of: "a", run: run.id).map(\.outcome) == ["interrupted", "succeeded"])
        #expect(try store.stepsApplied(inRun: run.id) == ["a"])
    }

    @Test func intentIsVisibleToAnotherConnectionBeforeTheEffect() throws {
        let root = TemporaryDirectory()
        let writer = try SQLiteRunStore(directory: root.url)
        let reader = try SQLiteRunStore(directory: root.url)
        let run = try writer.beginRun(command: .up, planPath: "p", planText: "")
        try writer.markRunning("s", run: run.id, attempt: 1, fingerprint: "f1")
        #expect(try reader.steps()["s"]?.state == .running)
        try writer.markSucceeded("s", run: run.id, fingerprint: "f1", outputs: ["k": .list([.string("v")])], duration: .milliseconds(5), adopted: false)
        let record = try #require(try reader.steps()["s"])
        #expect(record.state == .succeeded)
        #expect(record.outputs == ["k": .list([.string("v")])])
    }

    @Test func secondWriterIsRefusedWithTheHolderNamed() throws {
        let root = TemporaryDirectory()
        let store = try SQLiteRunStore(directory: root.url)
        let me = LockHolder.current(command: "provision up")
        try store.acquireLock(me)
        do {
            try store.acquireLock(LockHolder.current(command: "provision up"))
            Issue.record("a second lock was granted")
        } catch let error as LockError {
            guard case .held(let holder, _) = error else { Issue.record("expected held, got \(error)"); return }
            #expect(holder.pid == getpid())
            #expect(error.description.contains("pid \(getpid())"))
        }
        try store.releaseLock(pid: me.pid)
        try store.acquireLock(me)
    }

    @Test func lockOfADeadProcessIsReportedAsStaleAndNotTaken() throws {
        let root = TemporaryDirectory()
        let store = try SQLiteRunStore(directory: root.url)
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        var holder = LockHolder.current(command: "provision up")
        holder.pid = dead.processIdentifier
        try store.acquireLock(holder)
        #expect(holder.isDead)
        #expect(throws: LockError.self) { try store.acquireLock(LockHolder.current(command: "provision resume")) }
        do {
            try store.acquireLock(LockHolder.current(command: "provision resume"))
        } catch let error as LockError {
            guard case .stale = error else { Issue.record("expected stale, got \(error)"); return }
            #expect(error.description.contains("provision unlock"))
        }
        #expect(try store.lockHolder()?.pid == dead.processIdentifier)
        try store.clearLock()
        try store.acquireLock(LockHolder.current(command: "provision resume"))
    }

    @Test func holderWithAReusedPidIsDetectedByItsStartTime() {
        var holder = LockHolder.current(command: "provision up")
        #expect(!holder.isDead)
        holder.processStart = "1"
        #expect(holder.isDead)
    }

    @Test func expansionsAndHostKeysPersist() throws {
        let root = TemporaryDirectory()
        let store = try SQLiteRunStore(directory: root.url)
        try store.saveExpansion("node.ready", items: ["cp", "w1"])
        try store.pinHostKey("127.0.1.2", fingerprint: "SHA256:abc")
        let again = try SQLiteRunStore(directory: root.url)
        #expect(try again.expansion("node.ready") == ["cp", "w1"])
        #expect(try again.expansion("other") == nil)
        #expect(try again.pinnedHostKey("127.0.1.2") == "SHA256:abc")
    }

    @Test func newerSchemaIsRefusedWithAnUpgradeHint() throws {
        let root = TemporaryDirectory()
        _ = try SQLiteRunStore(directory: root.url)
        let database = try SQLiteDatabase(path: root.url.appendingPathComponent(SQLiteRunStore.fileName).path)
        try database.execute("PRAGMA user_version = 99")
        #expect(throws: StoreError.self) { try SQLiteRunStore(directory: root.url) }
    }
}
