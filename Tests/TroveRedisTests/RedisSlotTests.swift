import Testing
import TroveFixtures
@testable import TroveRedis

/// Hash slots as Redis Cluster computes them: known values, hash tags, and agreement with a real cluster's
/// `CLUSTER KEYSLOT` on keys shaped like Trove's and hostile ones.
@Suite struct RedisSlotTests {
    @Test func knownValues() {
        var text = "123456789"
        #expect(text.withUTF8 { RedisSlot.crc16(UnsafeRawBufferPointer($0)) } == 0x31C3)
        #expect(RedisSlot.of("foo") == 12182)
        #expect(RedisSlot.of("") == 0)
        text = "{user1000}.following"
        #expect(RedisSlot.of(text) == RedisSlot.of("{user1000}.followers"))
        #expect(RedisSlot.of("{user1000}.following") == RedisSlot.of("user1000"))
        // An empty tag is no tag; only the first `{` counts.
        #expect(RedisSlot.of("foo{}{bar}") != RedisSlot.of("bar"))
        #expect(RedisSlot.of("foo{{bar}}zap") == RedisSlot.of("{bar"))
        #expect(RedisSlot.of("foo{bar}{zap}") == RedisSlot.of("bar"))
    }

    @Test func agreesWithARealCluster() throws {
        let cluster = try RedisClusterServers(masters: 1)
        var keys = ["trove:e:events:full:1", "trove:g:all", "{trove:g}:t:event:1", "a{b", "}{", "{}", "é{ü}", "x{y}z{w}"]
        for index in 0..<300 {
            let length = Int.random(in: 0...24)
            keys.append(String((0..<length).map { _ in "ab{}:/_é0".randomElement()! }) + String(index))
        }
        for key in keys {
            #expect(Int(try cluster.servers[0].command(["CLUSTER", "KEYSLOT", key])) == RedisSlot.of(key), "\(key)")
        }
    }
}
