import Foundation
import TestSupport
import Testing
@testable import Engine

#if canImport(Glibc)
import Glibc
#endif

/// The producer's NVML source. No GPU can exist on this machine, so a **stand-in** NVML library
/// (`libnvidia-ml.so.1` compiled from the C below, two fake GPUs with fixed readings and one
/// pending XID event) is what the producer loads with `dlopen`; everything else is real.
@Suite(.serialized) struct NVMLSourceTests {
    static let fakeNVML = """
        #include <string.h>
        #include <stdio.h>
        typedef struct { unsigned int gpu, memory; } util_t;
        typedef struct { unsigned long long total, free, used; } mem_t;
        typedef struct { void *device; unsigned long long type, data; unsigned int gi, ci; } event_t;
        static int devices[2];
        static int xid_pending = 1;
        int nvmlInit_v2(void) { return 0; }
        int nvmlShutdown(void) { return 0; }
        int nvmlDeviceGetCount_v2(unsigned int *n) { *n = 2; return 0; }
        int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) { if (i > 1) return 2; *d = &devices[i]; return 0; }
        static int idx(void *d) { return d == &devices[1]; }
        int nvmlDeviceGetUUID(void *d, char *out, unsigned int n) { snprintf(out, n, "GPU-stand-in-%d", idx(d)); return 0; }
        int nvmlDeviceGetUtilizationRates(void *d, util_t *u) { u->gpu = idx(d) ? 73 : 37; u->memory = 5; return 0; }
        int nvmlDeviceGetMemoryInfo(void *d, mem_t *m) {
            m->total = 80ULL << 30; m->used = (10ULL << 30) * (idx(d) + 1); m->free = m->total - m->used; return 0; }
        int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t) { *t = sensor == 0 ? 51 + idx(d) : 0; return 0; }
        int nvmlDeviceGetPowerUsage(void *d, unsigned int *mw) { *mw = 250000 + 1000 * idx(d); return 0; }
        int nvmlDeviceGetClockInfo(void *d, int type, unsigned int *mhz) { *mhz = type == 1 ? 1410 : 0; return 0; }
        int nvmlDeviceGetTotalEnergyConsumption(void *d, unsigned long long *mj) { *mj = 123456789ULL + idx(d); return 0; }
        int nvmlEventSetCreate(void **set) { *set = &xid_pending; return 0; }
        int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set) { return types == 8 ? 0 : 3; }
        int nvmlEventSetWait_v2(void *set, event_t *e, unsigned int ms) {
            if (!xid_pending) return 10;
            xid_pending = 0; memset(e, 0, sizeof *e); e->device = &devices[1]; e->type = 8; e->data = 79; return 0; }
        """

    func buildFakeNVML(in cli: CLI) async throws -> String {
        let source = cli.write("fake_nvml.c", Self.fakeNVML)
        let library = cli.directory.appendingPathComponent("libnvidia-ml.so.1").path
        let built = try await cli.run(["-shared", "-fPIC", "-o", library, source], executable: "/usr/bin/cc")
        guard built.code == 0 else { throw StepFailure(built.stderr) }
        return library
    }

    @Test func nvmlSourceReadsEveryGPUThroughTheLoadedLibrary() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let library = try await buildFakeNVML(in: cli)
        let broker = try await Broker(cli: cli)
        defer { broker.stop() }
        let script = cli.write("kafka.py", ProducerTests.kafkaScript)
        try await broker.createTopics(ProducerTests.topics, cli: cli, script: script)

        let produced = try await cli.run(["--brokers", broker.address, "--count", "8", "--source", "nvml", "--nvml-library", library, "--node", "gpu-node"],
                                         executable: ProducerTests.producer, environment: ["LD_LIBRARY_PATH": ProducerTests.tools.appendingPathComponent("lib").path])
        #expect(produced.code == 0, "\(produced.stderr)")
        let consumed = try await cli.run([script, "consume", broker.address] + ProducerTests.topics, executable: ProducerTests.python)
        let messages = try #require(try JSONSerialization.jsonObject(with: Data(consumed.stdout.utf8)) as? [String: [[String: Any]]])
        let samples = (messages["gpu.metrics.v1"] ?? []).compactMap { $0["value"] as? [String: Any] }
        #expect(samples.count == 4)
        let byGPU = Dictionary(grouping: samples) { $0["gpu_uuid"] as? String ?? "" }
        #expect(Set(byGPU.keys) == ["GPU-stand-in-0", "GPU-stand-in-1"])
        for sample in byGPU["GPU-stand-in-1"] ?? [] {
            #expect(sample["DCGM_FI_DEV_GPU_UTIL"] as? Int == 73)
            #expect(sample["DCGM_FI_DEV_FB_USED"] as? Int == 20 * 1024 && sample["DCGM_FI_DEV_FB_FREE"] as? Int == 60 * 1024)
            #expect(sample["DCGM_FI_DEV_GPU_TEMP"] as? Int == 52 && sample["DCGM_FI_DEV_SM_CLOCK"] as? Int == 1410)
            #expect(sample["DCGM_FI_DEV_POWER_USAGE"] as? Double == 251.0)
            #expect(sample["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] as? Int == 123_456_790)
            #expect(sample["DCGM_FI_DEV_XID_ERRORS"] as? Int == 1, "the pending critical XID event is counted")
            #expect(sample["node"] as? String == "gpu-node")
        }
        #expect(byGPU["GPU-stand-in-0"]?.allSatisfy { $0["DCGM_FI_DEV_XID_ERRORS"] as? Int == 0 } == true)
    }

    @Test func autoFallsBackToTheSyntheticFleetAndNvmlAloneFailsClearly() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let missing = cli.directory.appendingPathComponent("no-such-libnvidia-ml.so.1").path
        let environment = ["LD_LIBRARY_PATH": ProducerTests.tools.appendingPathComponent("lib").path]
        // No broker needed: nothing is produced (a zero duration stops at once).
        let auto = try await cli.run(["--brokers", "127.0.0.1:1", "--duration", "0", "--nvml-library", missing, "--gpus", "3"],
                                     executable: ProducerTests.producer, environment: environment)
        #expect(auto.code == 0, "\(auto.stderr)")
        #expect(auto.stderr.contains("no GPU through NVML") && auto.stderr.contains("using 3 synthetic GPUs"))
        let forced = try await cli.run(["--brokers", "127.0.0.1:1", "--duration", "0", "--source", "nvml", "--nvml-library", missing],
                                       executable: ProducerTests.producer, environment: environment)
        #expect(forced.code != 0)
        #expect(forced.stderr.contains("cannot load \(missing)") && forced.stderr.contains("--source auto or synthetic"))
    }
}
