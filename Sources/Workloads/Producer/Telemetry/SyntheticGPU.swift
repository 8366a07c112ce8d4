import Foundation

/// One simulated GPU with believable dynamics: utilisation follows a slow load cycle plus noise,
/// temperature lags behind utilisation, power tracks it, energy integrates power.
struct SyntheticGPU {
    let uuid: String
    let index: Int
    let node: String
    let framebufferTotalMiB = 81_559  // an 80 GB H100
    private let phase: Double
    private let cyclePeriod: Double
    private var temperature = 35.0
    private var energyMilliJoules: UInt64 = 0
    private var xidErrors = 0

    init(index: Int, node: String, random: inout SeededRandom) {
        self.index = index
        self.node = node
        let bytes = (0..<4).map { _ in String(format: "%08x", UInt32(truncatingIfNeeded: random.next())) }
        uuid = "GPU-\(bytes[0])-\(bytes[1].prefix(4))-\(bytes[1].suffix(4))-\(bytes[2].prefix(4))-\(bytes[2].suffix(4))\(bytes[3])"
        phase = random.unit() * 2 * .pi
        cyclePeriod = 240 + random.unit() * 240
    }

    /// Advances the simulation to `time` (seconds) by `step` seconds and returns a sample as JSON
    /// with DCGM field names.
    mutating func sample(at time: Double, step: Double, random: inout SeededRandom) -> String {
        let cycle = 0.55 + 0.4 * sin(2 * .pi * time / cyclePeriod + phase)
        let utilisation = min(100, max(0, (cycle + (random.unit() - 0.5) * 0.1) * 100))
        let target = 32 + 0.5 * utilisation
        temperature += (target - temperature) * min(1, step / 30)  // thermal lag of ~30 s
        let power = 70 + utilisation / 100 * 630 + (random.unit() - 0.5) * 10
        energyMilliJoules += UInt64(power * step * 1000)
        if random.unit() < 0.0001 { xidErrors += 1 }
        let used = Int(Double(framebufferTotalMiB) * (0.1 + 0.8 * utilisation / 100))
        let clock = Int(1_095 + utilisation / 100 * 885)
        return DCGMSample(
            uuid: uuid, index: index, node: node, time: time, utilisation: Int(utilisation), framebufferUsedMiB: used,
            framebufferFreeMiB: framebufferTotalMiB - used, temperature: Int(temperature), powerWatts: power, smClock: clock,
            energyMilliJoules: energyMilliJoules, xidErrors: xidErrors
        ).json
    }
}
