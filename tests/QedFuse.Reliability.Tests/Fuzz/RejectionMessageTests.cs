using QedFuse.Block;
using QedFuse.Reliability.Tests.Support;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>A rejection is one line naming the file, even when the names in the image are hostile.</summary>
public sealed class RejectionMessageTests
{
    private static string MakeOverlayWithMissingBacking(TempDir dir, string backingName)
    {
        string backing = dir[backingName];
        File.WriteAllBytes(backing, new byte[1 << 20]);
        string overlay = dir["over.qed"];
        ImageOpener.Create(overlay, "qed", new ImageCreateOptions { BackingFile = backingName, BackingFormat = "raw" });
        File.Delete(backing);
        return overlay;
    }

    [Fact]
    public void Cli_rejection_of_a_backing_name_with_a_newline_is_one_line()
    {
        using var dir = new TempDir("qedfuse-msg-", memory: true);
        string overlay = MakeOverlayWithMissingBacking(dir, "ba\nse.raw");
        ProcResult r = Qedfuse.Run("info", overlay);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("se.raw", r.Stderr);
    }

    // A hostile header's backing name may hold control characters; messages show them escaped.
    [Fact]
    public void Library_rejection_of_a_backing_name_with_a_newline_is_one_line()
    {
        using var dir = new TempDir("qedfuse-msg-", memory: true);
        string overlay = MakeOverlayWithMissingBacking(dir, "ba\nse.raw");
        var e = Assert.ThrowsAny<BadImageException>(() => ImageOpener.Open(overlay, new ImageOpenOptions { ReadOnly = true }).Dispose());
        Assert.DoesNotContain('\n', e.Message);
    }
}
