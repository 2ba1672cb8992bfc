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
