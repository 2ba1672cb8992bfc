extension Result {
    /// True for `.failure` (metrics and logs only need to know whether a store or origin call failed).
    public var isFailure: Bool {
        if case .failure = self { true } else { false }
    }
}
