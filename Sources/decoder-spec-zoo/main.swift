// decoder-spec-zoo: runs every bug-zoo variant against the reusable checks and prints the table
// and the mutation score (`make zoo`). See docs/bug-zoo.md. Exit status 1 when a bug survives or
// the correct code fails a check.
import BugZoo
import SpecSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let results = ZooEvaluation.evaluateAll()
print("DecoderSpec bug zoo: \(results.count) catalogued bugs, \(results.reduce(0) { $0 + $1.variants.count }) variants")
print("(each variant must fail at least one check; the correct code it mutates must pass them all)")
print("")
print(ZooEvaluation.table(results))
print("")
for r in results {
    for v in r.variants where !v.caught {
        print("#\(r.bug.id) \(v.label): survived \(v.survivedChecks.joined(separator: ", "))")
        for f in v.correctFailures { print("  correct code failed \(f.check): \(f.verdict)") }
    }
}
print(ZooEvaluation.scoreLine(results))
exit(results.allSatisfy(\.caught) ? 0 : 1)
