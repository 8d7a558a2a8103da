import Foundation
import SpecSupport
import Testing

/// The module graph of docs/architecture.md is what Package.swift declares, and what Package.swift
/// declares is what the code imports: no declared edge that no file imports, no import that is not
/// declared, no `@_exported import` outside the umbrella, nothing but re-exports in the umbrella.
@Suite("Package graph: declared dependencies equal the imports")
struct PackageGraphSpecs {
    @Test("scripts/check-imports reports no difference between Package.swift and the import lines")
    func dependenciesEqualImports() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let r = try Subprocess.run(root.appendingPathComponent("scripts/check-imports"), [])
        #expect(r.status == 0, "scripts/check-imports:\n\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("each one's declared dependencies equal its imports"), "\(r.stdout)")
    }
}
