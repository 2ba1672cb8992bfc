import TroveApp

/// The process entry point; everything else lives in TroveApp so that tests can reach it.
@main
enum TroveMain {
    static func main() async {
        await TroveCommand.runFromCommandLine()
    }
}
