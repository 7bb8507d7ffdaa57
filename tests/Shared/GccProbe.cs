using System.Diagnostics;
using Xunit;

namespace QedFuse.Tests.Shared;

/// <summary>
/// The independent oracle for native layouts: compiles a C probe with gcc against the real
/// system headers, runs it, and parses the "key=value" lines it prints. Shared (as a linked
/// source file) by every test project that pins a binding's layouts.
/// </summary>
internal static class GccProbe
{
    public static Dictionary<string, long> Run(string source, params string[] gccArgs)
    {
        string dir = Directory.CreateTempSubdirectory("qedfuse-layout-").FullName;
        try
        {
            string src = Path.Combine(dir, "probe.c");
            string exe = Path.Combine(dir, "probe");
            File.WriteAllText(src, source);
            (int rc, string output) = Exec("gcc", ["-Wall", "-Werror", .. gccArgs, "-o", exe, src]);
            Assert.True(rc == 0, $"gcc failed (rc {rc}); gcc and the C headers (libc6-dev, libfuse3-dev) are needed for this test:\n{output}");
            (rc, output) = Exec(exe, []);
            Assert.True(rc == 0, $"probe failed: {output}");
            var result = new Dictionary<string, long>();
            foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = line.LastIndexOf('=');
                result[line[..eq]] = long.Parse(line[(eq + 1)..]);
            }

            return result;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int, string) Exec(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"cannot run {file}: {e.Message} (install gcc and the C headers; make deps does)");
            throw;
        }

        using (p)
        {
            Task<string> err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(60_000), $"{file} timed out");
            return (p.ExitCode, output + err.Result);
        }
    }
}
