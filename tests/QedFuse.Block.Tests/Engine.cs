namespace QedFuse.Block.Tests;

/// <summary>Small conveniences for driving the engine under test.</summary>
public static class Engine
{
    public static IBlockImage OpenRw(string path) => ImageOpener.Open(path, new ImageOpenOptions());

    public static IBlockImage OpenRo(string path, bool forceShare = false) =>
        ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = true, ForceShare = forceShare });

    public static void CreateQed(string path, long size, int clusterSize = 65536, int tableSize = 4,
        string? backing = null, string? backingFormat = null)
    {
        ImageOpener.Create(path, "qed", new ImageCreateOptions
        {
            Size = size,
            BackingFile = backing,
            BackingFormat = backingFormat,
            FormatOptions = new Dictionary<string, string>
            {
                ["cluster_size"] = clusterSize.ToString(),
                ["table_size"] = tableSize.ToString(),
            },
        });
    }

    /// <summary>Reads [offset, offset+length) through the engine in pieces of <paramref name="chunk"/> bytes.</summary>
    public static byte[] ReadChunked(IBlockImage image, long offset, int length, int chunk)
    {
        byte[] result = new byte[length];
        for (int done = 0; done < length; done += chunk)
        {
            int n = Math.Min(chunk, length - done);
            image.Read(offset + done, result.AsSpan(done, n));
        }

        return result;
    }

    /// <summary>A deterministic pattern for one write, different for every seed and position.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Writes a raw file of <paramref name="size"/> bytes holding a seeded pattern.</summary>
    public static byte[] CreateRawBacking(string path, int size, int seed)
    {
        byte[] data = Pattern(size, seed);
        File.WriteAllBytes(path, data);
        return data;
    }
}
