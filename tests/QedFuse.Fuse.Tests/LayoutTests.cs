using System.Text;
using QedFuse.Fuse.Native;
using QedFuse.Tests.Shared;

namespace QedFuse.Fuse.Tests;

/// <summary>
/// Pins every struct size, field offset, bitfield position and constant the binding
/// relies on against an independent oracle: gcc compiling a probe against the real
/// libfuse3 and glibc headers.
/// </summary>
public class LayoutTests
{
    [Fact]
    public void Managed_layouts_match_gcc_and_the_libfuse3_headers()
    {
        IReadOnlyList<LayoutFact> facts = NativeLayout.Facts();
        Dictionary<string, long> measured = CompileAndRunProbe(facts);
        var mismatches = new List<string>();
        foreach (LayoutFact fact in facts)
        {
            if (!measured.TryGetValue(fact.ToString(), out long c)) mismatches.Add($"{fact}: probe printed nothing");
            else if (c != fact.Value) mismatches.Add($"{fact}: managed {fact.Value}, C {c}");
        }
        Assert.True(mismatches.Count == 0, "layout mismatches:\n" + string.Join('\n', mismatches));
        Assert.True(facts.Count > 80, "suspiciously few facts pinned");
    }

    [Fact]
    public void Ops_table_is_44_pointers_with_write_buf_left_null()
    {
        // Guards the "write_buf stays NULL" decision: with it libfuse would want SPLICE_READ.
        FuseLowLevelOps ops = FuseOperations.Create();
        Assert.Equal(0, ops.WriteBuf);
        Assert.Equal(44 * 8, NativeLayout.Facts().Single(f => f.ToString() == "sizeof(struct fuse_lowlevel_ops)").Value);
    }

    private static string ProbeSource(IReadOnlyList<LayoutFact> facts)
    {
        var c = new StringBuilder();
        c.AppendLine("#define _GNU_SOURCE");
        c.AppendLine("#define FUSE_USE_VERSION 314");
        c.AppendLine("#include <fuse_lowlevel.h>");
        c.AppendLine("#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n#include <errno.h>");
        c.AppendLine("#include <fcntl.h>\n#include <unistd.h>\n#include <sys/stat.h>\n#include <sys/statvfs.h>\n#include <sys/mount.h>");
        c.AppendLine("static long firstbit(const unsigned char *p, size_t n) {");
        c.AppendLine("  for (size_t i = 0; i < n; i++) for (int b = 0; b < 8; b++) if (p[i] & (1u << b)) return (long)(i * 8 + b);");
        c.AppendLine("  return -1; }");
        c.AppendLine("int main(void) {");
        foreach (LayoutFact f in facts)
        {
            string key = f.ToString();
            switch (f.Kind)
            {
                case FactKind.Size:
                    c.AppendLine($"  printf(\"%s=%ld\\n\", \"{key}\", (long)sizeof({f.Type}));");
                    break;
                case FactKind.Offset:
                    c.AppendLine($"  printf(\"%s=%ld\\n\", \"{key}\", (long)offsetof({f.Type}, {f.Member}));");
                    break;
                case FactKind.Bit:
                    c.AppendLine($"  {{ {f.Type} s; memset(&s, 0, sizeof s); s.{f.Member} = 1;");
                    c.AppendLine($"    printf(\"%s=%ld\\n\", \"{key}\", firstbit((const unsigned char *)&s, sizeof s)); }}");
                    break;
                case FactKind.Constant:
                    c.AppendLine($"  printf(\"%s=%lld\\n\", \"{key}\", (long long)({f.Member}));");
                    break;
            }
        }
        c.AppendLine("  return 0; }");
        return c.ToString();
    }

    private static Dictionary<string, long> CompileAndRunProbe(IReadOnlyList<LayoutFact> facts)
    {
        Assert.True(File.Exists("/usr/include/fuse3/fuse_lowlevel.h"),
            "libfuse3 headers missing (/usr/include/fuse3/fuse_lowlevel.h): install libfuse3-dev (make deps does)");
        return GccProbe.Run(ProbeSource(facts), "-I/usr/include/fuse3");
    }
}
