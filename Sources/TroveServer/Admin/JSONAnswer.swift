internal import Foundation
internal import NIOCore

/// An answer Trove writes itself as JSON: every admin endpoint's, and a webhook's on either listener.
///
/// An object that cannot be encoded is answered 500 with a message saying so, never an empty object that
/// would read as success.
struct JSONAnswer {
    var status: Int
    var headers: [(String, String)] = [("Content-Type", "application/json")]
    var body: ByteBuffer

    /// `object` made of dictionaries, arrays, strings, numbers, booleans and `NSNull`, as JSONSerialization
    /// takes them; keys sorted, so answers diff well.
    static func json(_ status: Int, _ object: Any) -> JSONAnswer {
        guard JSONSerialization.isValidJSONObject(object),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        else {
            return encodingFailed("the answer (\(type(of: object))) is not JSON")
        }
        return JSONAnswer(status: status, body: ByteBuffer(bytes: data + Data("\n".utf8)))
    }

    /// A Codable value, encoded the same way.
    static func encoded(_ status: Int, _ value: some Encodable) -> JSONAnswer {
        do {
            let data = try JSONEncoder.sorted.encode(value)
            return JSONAnswer(status: status, body: ByteBuffer(bytes: data + Data("\n".utf8)))
        } catch {
            return encodingFailed("the answer could not be encoded: \(error)")
        }
    }

    /// `{"error": message}`: what went wrong and what to do instead.
    static func error(_ status: Int, _ message: String) -> JSONAnswer {
        json(status, ["error": message])
    }

    /// Built by hand, so it cannot fail in turn.
    private static func encodingFailed(_ message: String) -> JSONAnswer {
        let escaped = message.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            default: scalar.value < 0x20 ? String(format: "\\u%04x", scalar.value) : String(scalar)
            }
        }.joined()
        return JSONAnswer(status: 500, body: ByteBuffer(string: "{\"error\": \"internal error: \(escaped); see Trove's log\"}\n"))
    }
}

extension JSONEncoder {
    /// Sorted keys, pretty, slashes as they are: the admin API's and `trove explain --json`'s output.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }
}
