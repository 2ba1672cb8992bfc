/// One HTTP header field: as a request carries it (the rules read them for keys and credentials) and as an
/// entry stores it.
public struct Header: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == Header {
    /// The value of the first field with this name (given lower-case; compared without regard to case).
    public func value(of lowercasedName: String) -> String? {
        first { HTTPSyntax.name($0.name, is: lowercasedName) }?.value
    }
}
