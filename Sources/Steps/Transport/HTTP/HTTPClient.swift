import CCurl
import CShim
import Foundation

/// Blocking HTTP requests on libcurl, run off Swift's cooperative pool; optionally signed with
/// libcurl's built-in AWS Signature Version 4.
public struct HTTPClient: Sendable {
    /// A response: status code and body.
    public struct Response: Sendable {
        public let status: Int
        public let body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// AWS SigV4 signing parameters.
    public struct AWSSigning: Sendable {
        /// Like `aws:amz:us-east-1:ec2`.
        public var provider: String
        public var accessKey: String
        public var secretKey: String
        public var sessionToken: String?

        public init(region: String, service: String, accessKey: String, secretKey: String, sessionToken: String? = nil) {
            self.provider = "aws:amz:\(region):\(service)"
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.sessionToken = sessionToken
        }
    }

    /// Per-request deadline.
    public var timeout: Duration

    private static let globalInit: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    /// Creates a client.
    public init(timeout: Duration = .seconds(30)) {
        self.timeout = timeout
    }

    /// Sends one request. A non-2xx status is a response, not an error; a transport failure throws.
    public func send(
        _ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, signing: AWSSigning? = nil
    ) async throws -> Response {
        let timeout = timeout
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.perform(method, url, headers: headers, body: body, signing: signing, timeout: timeout) })
            }
        }
    }

    private static func perform(
        _ method: String, _ url: String, headers: [String: String], body: Data?, signing: AWSSigning?, timeout: Duration
    ) throws -> Response {
        guard globalInit, let curl = curl_easy_init() else { throw HTTPError(url: url, reason: "libcurl could not be initialised") }
        defer { curl_easy_cleanup(curl) }
        let sink = ResponseSink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }

        var list: UnsafeMutablePointer<curl_slist>?
        var allHeaders = headers
        if let token = signing?.sessionToken { allHeaders["X-Amz-Security-Token"] = token }
        for (name, value) in allHeaders { list = curl_slist_append(list, "\(name): \(value)") }
        defer { curl_slist_free_all(list) }

        shim_curl_setopt_string(curl, CURLOPT_URL, url)
        shim_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, method)
        shim_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        shim_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, Int(timeout.components.seconds * 1000))
        shim_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        shim_curl_setopt_pointer(curl, CURLOPT_HTTPHEADER, list)
        if let signing {
            shim_curl_setopt_string(curl, CURLOPT_AWS_SIGV4, signing.provider)
            shim_curl_setopt_string(curl, CURLOPT_USERPWD, "\(signing.accessKey):\(signing.secretKey)")
        }
        let bodyBytes = body.map { [UInt8]($0) } ?? []
        if body != nil {
            shim_curl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bodyBytes.count)
            shim_curl_setopt_string(curl, CURLOPT_COPYPOSTFIELDS, String(decoding: bodyBytes, as: UTF8.self))
        }
        let write: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, context in
            guard let data, let context else { return 0 }
            Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue().data.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: size * count)
            return size * count
        }
        shim_curl_setopt_pointer(curl, CURLOPT_WRITEFUNCTION, unsafeBitCast(write, to: UnsafeMutableRawPointer.self))
        shim_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, unmanaged.toOpaque())
        let rc = curl_easy_perform(curl)
        guard rc == CURLE_OK else { throw HTTPError(url: url, reason: String(cString: curl_easy_strerror(rc))) }
        var status = 0
        shim_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: sink.data)
    }
}

private final class ResponseSink {
    var data = Data()
}

/// A request that got no HTTP response at all.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public let url: String
    public let reason: String
    public var description: String { "request to \(url) failed: \(reason)" }
}
