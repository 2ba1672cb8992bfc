import Testing
@testable import TroveCore

/// The admission policy's memory: counts rise to 15, keys stay mostly apart, and counts age.
@Suite struct FrequencySketchTests {
    @Test func countsRiseAndSaturate() {
        var sketch = FrequencySketch(width: 1024)
        let key = "events:full:1".hashValue
        #expect(sketch.frequency(key) == 0)
        for _ in 0..<5 { sketch.increment(key) }
        #expect(sketch.frequency(key) == 5)
        for _ in 0..<100 { sketch.increment(key) }
        #expect(sketch.frequency(key) == FrequencySketch.maximum, "4-bit counters saturate, never wrap")
    }

    @Test func keysStayMostlyApart() {
        var sketch = FrequencySketch(width: 4096)
        for index in 0..<500 { sketch.increment("cold:\(index)".hashValue) }
        // 500 keys counted once each in 4096 counters per row: a key never counted reads 0 almost always.
        let phantoms = (0..<1000).filter { sketch.frequency("never:\($0)".hashValue) > 0 }.count
        #expect(phantoms < 50, "\(phantoms) of 1000 keys never counted read above 0")
        // Aging goes on all the time (a word halved every few dozen increments): a few keys counted once read 0 again.
        let counted = (0..<500).filter { sketch.frequency("cold:\($0)".hashValue) >= 1 }.count
        #expect(counted >= 450, "\(counted) of 500 keys counted once read at least 1")
    }

    @Test func countsAge() {
        var sketch = FrequencySketch(width: 64)
        let key = "hot".hashValue
        for _ in 0..<15 { sketch.increment(key) }
        #expect(sketch.frequency(key) == 15)
        // Ten increments per counter halve every word once.
        for index in 0..<(10 * sketch.width) { sketch.increment("other:\(index)".hashValue) }
        #expect(sketch.frequency(key) < 15, "halved at least once")
        #expect(sketch.frequency(key) >= 3, "halved, not cleared")
    }
}
