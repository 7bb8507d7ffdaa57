using System.Diagnostics;
using QedFuse.Fuse.Tests.Support;

namespace QedFuse.Fuse.Tests;

/// <summary>A mount served by another process (this assembly's <see cref="Program"/>).</summary>
public class ChildProcessTests
{
    [Fact]
    public async Task Sigkilled_server_leaves_no_stale_mount_thanks_to_auto_unmount()
    {
        string dir = Directory.CreateTempSubdirectory("qedfuse-kill-").FullName;
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "exec", typeof(Program).Assembly.Location, "serve", dir }) psi.ArgumentList.Add(a);
        using Process child = Process.Start(psi)!;
        try
        {
            using var cts = new CancellationTokenSource(TestMount.Timeout);
            string? line = await child.StandardOutput.ReadLineAsync(cts.Token);
            Assert.True(line == "ready", $"child did not get ready: {line} {(child.HasExited ? await child.StandardError.ReadToEndAsync() : "")}");
            Assert.True(TestMount.IsMounted(dir));
            Assert.Equal("hello, fuse\n", await File.ReadAllTextAsync(Path.Combine(dir, "small.txt")));

            child.Kill(); // SIGKILL: no chance to unmount
            Assert.True(child.WaitForExit(15_000));
            Assert.True(TestMount.WaitUntil(() => !TestMount.IsMounted(dir), TestMount.Timeout), "stale mount left behind");
            Assert.False(File.Exists(Path.Combine(dir, "small.txt")));
        }
        finally
        {
            if (!child.HasExited) child.Kill();
            TestMount.ForceUnmount(dir);
            try { Directory.Delete(dir); } catch (IOException) { }
        }
    }
}
