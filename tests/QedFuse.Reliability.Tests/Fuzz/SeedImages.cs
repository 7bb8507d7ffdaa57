using System.Buffers.Binary;
using QedFuse.Block;
using QedFuse.Reliability.Tests.Support;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>A valid image to mutate, with the layout the mutator aims at.</summary>
public sealed class SeedImage
{
    public required string Name { get; init; }
    public required byte[] Bytes { get; init; }
    public required uint ClusterSize { get; init; }
    public required uint TableSize { get; init; }
    public required long HeaderBytes { get; init; }
    public required long L1Offset { get; init; }
    public required int BackingNameEnd { get; init; }

    /// <summary>Host offsets of the L2 tables L1 points to.</summary>
    public required long[] L2Offsets { get; init; }

    /// <summary>Host offsets of data clusters (for duplicate-reference mutations).</summary>
    public required long[] DataOffsets { get; init; }

    public int TableBytes => (int)(TableSize * ClusterSize);

    public static SeedImage Load(string name, string path)
    {
        byte[] b = File.ReadAllBytes(path);
        uint cluster = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        uint table = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        uint header = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(12));
        long l1 = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(40));
        uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(56));
        uint nameLen = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(60));
        int entries = (int)(table * cluster / 8);
        var l2 = new List<long>();
        var data = new List<long>();
        for (int i = 0; i < entries; i++)
        {
            long e = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)l1 + i * 8));
            if (e == 0)
            {
                continue;
            }

            l2.Add(e);
            for (int j = 0; j < entries; j++)
            {
                long d = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)e + j * 8));
                if (d > 1)
                {
                    data.Add(d);
                }
            }
        }

        Assert.True(l2.Count > 0, $"seed {name} has no L2 table");
        return new SeedImage
        {
            Name = name,
            Bytes = b,
            ClusterSize = cluster,
            TableSize = table,
            HeaderBytes = (long)header * cluster,
            L1Offset = l1,
            BackingNameEnd = nameLen == 0 ? 64 : (int)(nameOff + nameLen),
            L2Offsets = [.. l2],
            DataOffsets = [.. data],
        };
    }
}

/// <summary>
/// Builds the seed corpus in a directory: real images written by qemu-img/qemu-io (data, zero
/// clusters, backing files in qed and raw format, 4 KiB and 64 KiB clusters, table sizes
/// 2..16), and a table_size=1 image made by our own creator (QEMU cannot open those).
/// </summary>
public static class SeedCorpus
{
    public static List<SeedImage> Build(string dir)
    {
        var seeds = new List<SeedImage>();

        string Qemu(string name, string opts, string size, params string[] ioCommands)
        {
            string path = Path.Combine(dir, name);
            Proc.Ok("qemu-img", ["create", "-q", "-f", "qed", "-o", opts, path, size]);
            QemuIo(path, ioCommands);
            return path;
        }

        // 64 KiB clusters, default table size: data, zero clusters, a partial cluster, data at the very end.
        seeds.Add(SeedImage.Load("c64k-t4", Qemu("c64k-t4.qed", "cluster_size=64K,table_size=4", "24M",
            "write -P 0xaa 0 128k", "write -z 1M 128k", "write -P 0x5c 3M 4k", "write -P 0x11 24511k 64k")));

        // 4 KiB clusters, table_size 2 (one L2 table maps 4 MiB): several L2 tables.
        seeds.Add(SeedImage.Load("c4k-t2", Qemu("c4k-t2.qed", "cluster_size=4K,table_size=2", "16M",
            "write -P 0x01 0 8k", "write -P 0x02 4100k 4k", "write -z 8M 12k", "write -P 0x03 12M 20k", "write -P 0x04 16380k 4k")));

        seeds.Add(SeedImage.Load("c4k-t16", Qemu("c4k-t16.qed", "cluster_size=4K,table_size=16", "8M",
            "write -P 0x21 4k 4k", "write -z 64k 64k", "write -P 0x22 7M 10k")));

        seeds.Add(SeedImage.Load("c64k-t8", Qemu("c64k-t8.qed", "cluster_size=64K,table_size=8", "16M",
            "write -P 0x31 0 64k", "write -P 0x32 8M 200k", "write -z 12M 64k")));

        seeds.Add(SeedImage.Load("c4k-t1", BuildTableSizeOne(Path.Combine(dir, "c4k-t1.qed"))));

        // Backing chains: a qed base and a raw base, each under an overlay with partial writes.
        string baseQed = Qemu("base.qed", "cluster_size=64K", "8M", "write -P 0x41 0 1M", "write -P 0x42 6M 512k");
        _ = baseQed;
        string overQed = Path.Combine(dir, "over-qed.qed");
        Proc.Ok("qemu-img", "create", "-q", "-f", "qed", "-o", "cluster_size=64K", "-b", "base.qed", "-F", "qed", overQed, "12M");
        QemuIo(overQed, "write -P 0x51 4k 4k", "write -z 192k 64k", "write -P 0x52 6200k 100k", "write -P 0x53 11M 4k");
        seeds.Add(SeedImage.Load("over-qed", overQed));

        string baseRaw = Path.Combine(dir, "base.raw");
        var raw = new byte[3 << 20];
        new Random(7).NextBytes(raw);
        File.WriteAllBytes(baseRaw, raw);
        string overRaw = Path.Combine(dir, "over-raw.qed");
        Proc.Ok("qemu-img", "create", "-q", "-f", "qed", "-o", "cluster_size=4K,table_size=4", "-b", "base.raw", "-F", "raw", overRaw, "6M");
        QemuIo(overRaw, "write -P 0x61 1k 2k", "write -z 8k 8k", "write -P 0x62 2M 100k", "write -P 0x63 5M 4k");
        seeds.Add(SeedImage.Load("over-raw", overRaw));

        return seeds;
    }

    private static void QemuIo(string path, params string[] commands)
    {
        if (commands.Length == 0)
        {
            return;
        }

        var args = new List<string> { "-f", "qed" };
        foreach (string c in commands)
        {
            args.AddRange(["-c", c]);
        }

        args.Add(path);
        ProcResult r = Proc.Run("qemu-io", args);
        Assert.True(r.ExitCode == 0 && !r.Stdout.Contains("failed", StringComparison.OrdinalIgnoreCase), $"qemu-io on {path}: {r}");
    }

    /// <summary>table_size=1, 4 KiB clusters (an L2 table maps 2 MiB), written through our own engine.</summary>
    private static string BuildTableSizeOne(string path)
    {
        ImageOpener.Create(path, "qed", new ImageCreateOptions
        {
            Size = 8 << 20,
            FormatOptions = new Dictionary<string, string> { ["cluster_size"] = "4096", ["table_size"] = "1" },
        });
        using (IBlockImage img = ImageOpener.Open(path, new ImageOpenOptions()))
        {
            img.Write(0, Fill(8192, 0x71));
            img.Write((2 << 20) + 4096, Fill(4096, 0x72));
            img.Write(5 << 20, Fill(12288, 0x73));
            img.WriteZeroes(6 << 20, 8192, unmap: false);
            img.Write((8 << 20) - 4096, Fill(4096, 0x74));
        }

        return path;
    }

    private static byte[] Fill(int n, byte b)
    {
        var a = new byte[n];
        Array.Fill(a, b);
        return a;
    }
}
