#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if FUZZING
import CTroveFuzz
#endif
import TroveFuzz

/// The target `TROVE_FUZZ` names (`rules` when unset).
let target: String = getenv("TROVE_FUZZ").map { String(cString: $0) } ?? "rules"

/// What libFuzzer calls for every input it tries (by this name when its own main runs the driver).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.run(target, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Built for fuzzing (`make fuzz`: -sanitize=fuzzer -DFUZZING), hands the command line to libFuzzer's driver;
/// built plainly, runs the target over the files named (a crash's input, or a corpus), for reproducing.
@main
enum FuzzMain {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
        #else
        let files = CommandLine.arguments.dropFirst()
        guard !files.isEmpty else {
            print("usage: TROVE_FUZZ=\(FuzzTargets.names.joined(separator: "|")) trove-fuzz FILE...  (make fuzz runs libFuzzer)")
            exit(2)
        }
        for path in files {
            guard let file = fopen(path, "rb") else {
                print("trove-fuzz: cannot read \(path)")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk[..<count]
            }
            fclose(file)
            _ = bytes.withUnsafeBufferPointer { fuzzOne($0.baseAddress, $0.count) }
            print("ok  \(path)")
        }
        #endif
    }
}
