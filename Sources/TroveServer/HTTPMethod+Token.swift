internal import NIOHTTP1

extension HTTPMethod {
    /// The method as it is written on the wire. NIO spells one method differently: `.MSEARCH`'s `rawValue` is
    /// "MSEARCH", but the request said "M-SEARCH" (and the origin must get that, or it answers 400).
    var token: String {
        if case .MSEARCH = self { return "M-SEARCH" }
        return rawValue
    }
}
