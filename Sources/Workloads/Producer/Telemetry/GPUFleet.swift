import Foundation

/// Where GPU samples come from: the machine's GPUs through NVML, or a seeded synthetic fleet.
protocol GPUFleet: AnyObject {
    /// One UUID per GPU, in index order.
    var uuids: [String] { get }
    /// A sample of GPU `index` at `time` (seconds since the epoch), `step` seconds after its last
    /// one, as a JSON object with DCGM field names.
    func sample(_ index: Int, at time: Double, step: Double) -> String
}

/// Which fleet `--source` asks for.
enum GPUSource: String, CaseIterable {
    /// NVML when a GPU can be read, otherwise synthetic.
    case auto
    case nvml
    case synthetic
}

/// One GPU sample in DCGM field names, as the processor expects it.
struct DCGMSample {
    var uuid: String
    var index: Int
    var node: String
    var time: Double
    var utilisation: Int
    var framebufferUsedMiB: Int
    var framebufferFreeMiB: Int
    var temperature: Int
    var powerWatts: Double
    var smClock: Int
    var energyMilliJoules: UInt64
    var xidErrors: Int

    var json: String {
        """
        {"gpu_uuid":"\(uuid)","gpu_index":\(index),"node":"\(node)","timestamp":\(String(format: "%.3f", time)),\
        "DCGM_FI_DEV_GPU_UTIL":\(utilisation),"DCGM_FI_DEV_FB_USED":\(framebufferUsedMiB),"DCGM_FI_DEV_FB_FREE":\(framebufferFreeMiB),\
        "DCGM_FI_DEV_GPU_TEMP":\(temperature),"DCGM_FI_DEV_POWER_USAGE":\(String(format: "%.1f", powerWatts)),\
        "DCGM_FI_DEV_SM_CLOCK":\(smClock),"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":\(energyMilliJoules),"DCGM_FI_DEV_XID_ERRORS":\(xidErrors)}
        """
    }
}

/// The seeded synthetic fleet as a `GPUFleet`.
final class SyntheticFleet: GPUFleet {
    private var gpus: [SyntheticGPU]
    private var random: SeededRandom
    let uuids: [String]

    init(count: Int, node: String, random: SeededRandom) {
        var random = random
        gpus = (0..<count).map { SyntheticGPU(index: $0, node: node, random: &random) }
        uuids = gpus.map(\.uuid)
        self.random = random
    }

    func sample(_ index: Int, at time: Double, step: Double) -> String {
        gpus[index].sample(at: time, step: step, random: &random)
    }
}
