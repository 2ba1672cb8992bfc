
/// A string written in the file, or read from an environment variable when the file says `{env: NAME}`.
public struct ConfigString: Sendable, Equatable {
    /// The environment variable the value comes from; nil when it is written in the file.
    public let environmentVariable: String?
    /// The value; nil when it comes from an environment variable that is not set.
    public let value: String?

    public static func literal(_ value: String) -> ConfigString {
        ConfigString(environmentVariable: nil, value: value)
    }

    /// How to show it without revealing a secret: `$NAME` or the literal.
    public var display: String {
        environmentVariable.map { "$" + $0 } ?? value ?? ""
    }
}
