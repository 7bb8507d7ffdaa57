using System.Text;
using QedFuse.Block.Native;
using QedFuse.Tests.Shared;

namespace QedFuse.Block.Tests;

/// <summary>
/// Pins every struct size, field offset and constant Block's own libc calls rely on against
/// gcc compiling a probe with the real glibc headers, so an ABI difference fails here instead
/// of corrupting a lock or a stat buffer.
/// </summary>
public class LayoutTests
{
    [Fact]
    public void LibcLayoutsAndConstantsMatchGcc()
    {
        IReadOnlyList<(string C, long Managed)> facts = LibC.LayoutFacts();
        var c = new StringBuilder();
        c.AppendLine("#define _GNU_SOURCE");
        c.AppendLine("#include <stddef.h>\n#include <stdio.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <unistd.h>\n#include <sys/stat.h>");
        c.AppendLine("int main(void) {");
        foreach (var (expr, _) in facts)
        {
            c.AppendLine($"  printf(\"%s=%lld\\n\", \"{expr}\", (long long)({expr}));");
        }

        c.AppendLine("  return 0; }");
        Dictionary<string, long> measured = GccProbe.Run(c.ToString());
        var mismatches = facts.Where(f => measured[f.C] != f.Managed).Select(f => $"{f.C}: managed {f.Managed}, C {measured[f.C]}").ToList();
        Assert.True(mismatches.Count == 0, "layout mismatches:\n" + string.Join('\n', mismatches));
        Assert.True(facts.Count >= 25, "suspiciously few facts pinned");
    }
}
