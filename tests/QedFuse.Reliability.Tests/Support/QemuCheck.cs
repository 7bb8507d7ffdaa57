using System.Text.RegularExpressions;

namespace QedFuse.Reliability.Tests.Support;

/// <summary>qemu-img check as the oracle, minus its known QED counting defect.</summary>
public static partial class QemuCheck
{
    /// <summary>
    /// Asserts that qemu-img check finds the image clean. QEMU 7.2 counts the clusters of a QED
    /// file as roundup(file size) / (cluster_size - 1) (block/qed.h qed_bytes_to_clusters), so
    /// it reports exactly that many minus the real count as "leaked" on any image big enough
    /// (one per 16 MiB of file with 4 KiB clusters, one per 4 GiB with 64 KiB clusters).
    /// Those phantom leaks, and nothing else, are tolerated; qedfuse check must say 0 as well.
    /// </summary>
    public static void AssertClean(string image, bool alsoOurs = true)
    {
        ProcResult r = Proc.Run("qemu-img", "check", image);
        if (r.ExitCode == 3)
        {
            long cluster = ClusterSize(image);
            long size = new FileInfo(image).Length;
            long rounded = (size + cluster - 1) / cluster * cluster;
            long phantom = rounded / (cluster - 1) - rounded / cluster;
            Match m = LeakLine().Match(r.Stdout);
            Assert.True(m.Success && long.Parse(m.Groups[1].Value) <= phantom && !r.Stdout.Contains("ERROR", StringComparison.Ordinal),
                $"qemu-img check {image} reports more leaks than its known miscount ({phantom} phantom): {r}");
        }
        else
        {
            Assert.True(r.ExitCode == 0, $"qemu-img check {image}: {r}");
        }

        if (alsoOurs)
        {
            ProcResult ours = Qedfuse.Run("check", image);
            Assert.True(ours.ExitCode == 0, $"qedfuse check {image}: {ours}");
        }
    }

    private static long ClusterSize(string image)
    {
        using var h = File.OpenHandle(image, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var b = new byte[8];
        RandomAccess.Read(h, b, 0);
        return BitConverter.ToUInt32(b, 4);
    }

    [GeneratedRegex(@"(\d+) leaked clusters were found")]
    private static partial Regex LeakLine();
}
