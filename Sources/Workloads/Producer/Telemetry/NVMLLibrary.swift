import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// NVIDIA's management library, loaded at run time with `dlopen` (the producer must start on
/// machines without a GPU or a driver). Only the calls the producer needs, bound by name.
final class NVMLLibrary {
    typealias Device = OpaquePointer

    // Out-parameters that are C structs are passed as raw memory and read by offset:
    // nvmlUtilization_t {uint gpu, memory}, nvmlMemory_t {u64 total, free, used},
    // nvmlEventData_t {nvmlDevice_t device; u64 eventType, eventData; uint gpuInstanceId, computeInstanceId}.
    static let eventDataSize = 32

    private let handle: UnsafeMutableRawPointer
    let initialize: @convention(c) () -> Int32
    let shutdown: @convention(c) () -> Int32
    let deviceCount: @convention(c) (UnsafeMutablePointer<UInt32>) -> Int32
    let deviceByIndex: @convention(c) (UInt32, UnsafeMutablePointer<Device?>) -> Int32
    let uuid: @convention(c) (Device, UnsafeMutablePointer<CChar>, UInt32) -> Int32
    let utilization: @convention(c) (Device, UnsafeMutablePointer<UInt32>) -> Int32
    let memory: @convention(c) (Device, UnsafeMutablePointer<UInt64>) -> Int32
    let temperature: @convention(c) (Device, Int32, UnsafeMutablePointer<UInt32>) -> Int32
    let power: @convention(c) (Device, UnsafeMutablePointer<UInt32>) -> Int32
    let clock: @convention(c) (Device, Int32, UnsafeMutablePointer<UInt32>) -> Int32
    let energy: @convention(c) (Device, UnsafeMutablePointer<UInt64>) -> Int32
    /// XID events need these three; a library without them reports no XID errors.
    let eventSetCreate: (@convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32)?
    let registerEvents: (@convention(c) (Device, UInt64, OpaquePointer) -> Int32)?
    let eventSetWait: (@convention(c) (OpaquePointer, UnsafeMutableRawPointer, UInt32) -> Int32)?

    /// NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, nvmlEventTypeXidCriticalError.
    static let temperatureGPU: Int32 = 0
    static let clockSM: Int32 = 1
    static let xidCriticalError: UInt64 = 0x0000_0000_0000_0008

    /// Loads `path`; nil (with the reason) when the library or one of its required symbols is missing.
    static func load(_ path: String) -> Result<NVMLLibrary, NVMLError> {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            return .failure(NVMLError(message: "cannot load \(path): \(dlerror().map { String(cString: $0) } ?? "unknown error")"))
        }
        do {
            return .success(try NVMLLibrary(handle: handle))
        } catch let error as NVMLError {
            dlclose(handle)
            return .failure(error)
        } catch {
            dlclose(handle)
            return .failure(NVMLError(message: "\(error)"))
        }
    }

    private init(handle: UnsafeMutableRawPointer) throws {
        self.handle = handle
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let pointer = dlsym(handle, name) else { throw NVMLError(message: "the library has no \(name)") }
            return unsafeBitCast(pointer, to: type)
        }
        func optional<T>(_ name: String, as type: T.Type) -> T? { dlsym(handle, name).map { unsafeBitCast($0, to: type) } }
        initialize = try symbol("nvmlInit_v2", as: (@convention(c) () -> Int32).self)
        shutdown = try symbol("nvmlShutdown", as: (@convention(c) () -> Int32).self)
        deviceCount = try symbol("nvmlDeviceGetCount_v2", as: (@convention(c) (UnsafeMutablePointer<UInt32>) -> Int32).self)
        deviceByIndex = try symbol("nvmlDeviceGetHandleByIndex_v2", as: (@convention(c) (UInt32, UnsafeMutablePointer<Device?>) -> Int32).self)
        uuid = try symbol("nvmlDeviceGetUUID", as: (@convention(c) (Device, UnsafeMutablePointer<CChar>, UInt32) -> Int32).self)
        utilization = try symbol("nvmlDeviceGetUtilizationRates", as: (@convention(c) (Device, UnsafeMutablePointer<UInt32>) -> Int32).self)
        memory = try symbol("nvmlDeviceGetMemoryInfo", as: (@convention(c) (Device, UnsafeMutablePointer<UInt64>) -> Int32).self)
        temperature = try symbol("nvmlDeviceGetTemperature", as: (@convention(c) (Device, Int32, UnsafeMutablePointer<UInt32>) -> Int32).self)
        power = try symbol("nvmlDeviceGetPowerUsage", as: (@convention(c) (Device, UnsafeMutablePointer<UInt32>) -> Int32).self)
        clock = try symbol("nvmlDeviceGetClockInfo", as: (@convention(c) (Device, Int32, UnsafeMutablePointer<UInt32>) -> Int32).self)
        energy = try symbol("nvmlDeviceGetTotalEnergyConsumption", as: (@convention(c) (Device, UnsafeMutablePointer<UInt64>) -> Int32).self)
        eventSetCreate = optional("nvmlEventSetCreate", as: (@convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32).self)
        registerEvents = optional("nvmlDeviceRegisterEvents", as: (@convention(c) (Device, UInt64, OpaquePointer) -> Int32).self)
        eventSetWait = optional("nvmlEventSetWait_v2", as: (@convention(c) (OpaquePointer, UnsafeMutableRawPointer, UInt32) -> Int32).self)
    }

    deinit { dlclose(handle) }
}

/// NVML could not be used.
struct NVMLError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
