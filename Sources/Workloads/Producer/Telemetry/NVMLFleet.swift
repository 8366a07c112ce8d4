import Foundation

/// The machine's real GPUs, read through NVML at each sample. XID errors are counted from NVML's
/// critical-XID events when the library offers them.
final class NVMLFleet: GPUFleet {
    private let nvml: NVMLLibrary
    private let devices: [NVMLLibrary.Device]
    let uuids: [String]
    let node: String
    private var eventSet: OpaquePointer?
    private var xidErrors: [Int]

    /// Opens NVML from `library` and enumerates the GPUs; throws when there is none to read.
    init(library: String, node: String) throws {
        let nvml = try NVMLLibrary.load(library).get()
        guard nvml.initialize() == 0 else { throw NVMLError(message: "nvmlInit failed (is the NVIDIA driver loaded?)") }
        var count: UInt32 = 0
        guard nvml.deviceCount(&count) == 0, count > 0 else { throw NVMLError(message: "NVML reports no GPU") }
        var devices: [NVMLLibrary.Device] = []
        var uuids: [String] = []
        for index in 0..<count {
            var device: NVMLLibrary.Device?
            guard nvml.deviceByIndex(index, &device) == 0, let device else { throw NVMLError(message: "cannot open GPU \(index)") }
            var buffer = [CChar](repeating: 0, count: 96)
            _ = nvml.uuid(device, &buffer, UInt32(buffer.count))
            devices.append(device)
            uuids.append(String(cString: buffer))
        }
        self.nvml = nvml
        self.devices = devices
        self.uuids = uuids
        self.node = node
        self.xidErrors = Array(repeating: 0, count: devices.count)
        if let create = nvml.eventSetCreate, let register = nvml.registerEvents {
            var set: OpaquePointer?
            if create(&set) == 0, let set {
                eventSet = set
                for device in devices { _ = register(device, NVMLLibrary.xidCriticalError, set) }
            }
        }
    }

    deinit { _ = nvml.shutdown() }

    func sample(_ index: Int, at time: Double, step: Double) -> String {
        let device = devices[index]
        drainXIDEvents()
        var utilization: [UInt32] = [0, 0]  // gpu, memory
        var memory: [UInt64] = [0, 0, 0]     // total, free, used
        var temperature: UInt32 = 0
        var milliwatts: UInt32 = 0
        var clock: UInt32 = 0
        var energy: UInt64 = 0
        _ = nvml.utilization(device, &utilization)
        _ = nvml.memory(device, &memory)
        _ = nvml.temperature(device, NVMLLibrary.temperatureGPU, &temperature)
        _ = nvml.power(device, &milliwatts)
        _ = nvml.clock(device, NVMLLibrary.clockSM, &clock)
        _ = nvml.energy(device, &energy)
        return DCGMSample(
            uuid: uuids[index], index: index, node: node, time: time, utilisation: Int(utilization[0]),
            framebufferUsedMiB: Int(memory[2] >> 20), framebufferFreeMiB: Int(memory[1] >> 20), temperature: Int(temperature),
            powerWatts: Double(milliwatts) / 1000, smClock: Int(clock), energyMilliJoules: energy, xidErrors: xidErrors[index]
        ).json
    }

    /// Counts pending critical-XID events without waiting.
    private func drainXIDEvents() {
        guard let eventSet, let wait = nvml.eventSetWait else { return }
        let data = UnsafeMutableRawPointer.allocate(byteCount: NVMLLibrary.eventDataSize, alignment: 8)
        defer { data.deallocate() }
        while wait(eventSet, data, 0) == 0 {
            let device = data.load(as: OpaquePointer?.self)
            if let device, let index = devices.firstIndex(of: device) { xidErrors[index] += 1 }
        }
    }
}
