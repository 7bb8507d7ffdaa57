using QedFuse.Block.Metadata;

namespace QedFuse.Block.Qed;

/// <summary>The QED driver: probe by magic, open with validation, repair and backing chain; create.</summary>
public sealed class QedFormat : IImageFormat
{
    public const string FormatName = "qed";

    /// <summary>An L2 entry of 1 marks a zero cluster: reads as zeros, backing chain not consulted.</summary>
    internal const ulong ZeroClusterEntry = 1;

    /// <summary>Longest backing file name we accept (PATH_MAX), so a hostile header cannot make us read gigabytes.</summary>
    internal const int MaxBackingNameBytes = 4095;

    public string Name => FormatName;

    public bool Probe(ReadOnlySpan<byte> head) => QedHeader.HasMagic(head);

    public IBlockImage Open(string path, ImageOpenOptions options, ImageOpener opener)
    {
        HostFile file = HostFile.Open(path, options);
        IBlockImage? backing = null;
        try
        {
            var (header, backingName, l1) = ReadMetadata(file, path);
            var geo = new QedGeometry(header);
            if (backingName is not null && !options.SkipBacking)
            {
                backing = opener.OpenBacking(path, backingName, header.BackingIsRaw ? "raw" : null, options);
            }

            var needCheck = new NeedCheckFlag(file, header);
            if (!options.ReadOnly)
            {
                PrepareForWriting(file, needCheck, geo, l1, options);
            }

            int cacheTables = (int)Math.Clamp(options.CacheBytes / geo.TableBytes, 1, int.MaxValue);
            return new QedImage(file, needCheck, l1, backingName, backing, cacheTables, options);
        }
        catch
        {
            backing?.Dispose();
            file.Dispose();
            throw;
        }
    }

    public void Create(string path, ImageCreateOptions options, ImageOpener opener) =>
        QedCreator.Create(path, options, opener);

    /// <summary>Reads and validates what an open needs from the file: header, backing file name, L1 table.</summary>
    internal static (QedHeader Header, string? BackingName, ulong[] L1) ReadMetadata(HostFile file, string path)
    {
        Span<byte> head = stackalloc byte[QedHeader.Size];
        long length = file.Length;
        file.ReadExactly(0, head[..(int)Math.Min(length, QedHeader.Size)]);
        QedHeader header = QedHeader.Parse(head[..(int)Math.Min(length, QedHeader.Size)], path, length);
        string? backingName = ReadBackingName(file, header, path);
        var l1 = new ulong[new QedGeometry(header).TableEntries];
        TableCodec.LittleEndian.Read(file, (long)header.L1TableOffset, l1);
        return (header, backingName, l1);
    }

    private static string? ReadBackingName(HostFile file, QedHeader header, string path)
    {
        if (!header.HasBackingFile)
        {
            return null;
        }

        if (header.BackingFilenameSize > MaxBackingNameBytes)
        {
            throw new BadImageException(path, $"header field 'backing_filename_size' is {header.BackingFilenameSize}: longer than {MaxBackingNameBytes} bytes");
        }

        byte[] name = new byte[header.BackingFilenameSize];
        file.ReadExactly(header.BackingFilenameOffset, name);
        if (Array.IndexOf(name, (byte)0) >= 0)
        {
            throw new BadImageException(path, "backing file name in the header contains a NUL byte");
        }

        return System.Text.Encoding.UTF8.GetString(name);
    }

    /// <summary>
    /// A writable open repairs an image left with need-check set (QEMU does the same) and
    /// clears autoclear bits, none of which this driver understands. It refuses an image the
    /// repair leaves corrupt, or whose L1 table points past the end of the file (a truncated
    /// copy): writing there would bury the damage. Opened for the check verb
    /// (<see cref="ImageOpenOptions.SkipRepair"/>), a need-check image is taken as corrupt
    /// until a check finds it clean.
    /// </summary>
    private static void PrepareForWriting(HostFile file, NeedCheckFlag needCheck, QedGeometry geo, ulong[] l1, ImageOpenOptions options)
    {
        const string wayOut = "repair it with 'qedfuse check -r all', or mount it read-only with -o ro";
        if (needCheck.IsSet && options.SkipRepair)
        {
            needCheck.KnownCorrupt = true;
        }
        else if (needCheck.IsSet)
        {
            CheckResult r = new QedChecker(file, needCheck, geo).Run(l1, CheckRepair.All);
            options.Log?.Invoke(
                $"{file.Path}: was not closed cleanly (need-check set); checked: {r.CorruptionsFixed} corruptions repaired, "
                + $"{r.Corruptions} left, {r.LeaksFixed} leaked clusters reclaimed, {r.Leaks} left");
            if (r.Corruptions > 0 || r.CheckErrors > 0)
            {
                throw new BadImageException(file.Path,
                    $"the automatic repair left {r.Corruptions} corruptions and {r.CheckErrors} check errors ({r.Messages.FirstOrDefault(m => !m.StartsWith("repaired", StringComparison.Ordinal))}); {wayOut}");
            }
        }

        if (!options.SkipRepair)
        {
            long fileLength = file.Length;
            int outside = l1.Count(e => e != 0 && !TableLiesInside(e, geo, fileLength));
            if (outside > 0)
            {
                throw new BadImageException(file.Path,
                    $"{outside} L1 entries point to L2 tables outside the {fileLength}-byte file (a truncated copy?); {wayOut}");
            }
        }

        if (needCheck.Header.AutoclearFeatures != 0)
        {
            needCheck.Rewrite(needCheck.Header with { AutoclearFeatures = 0 });
        }
    }

    /// <summary>A valid L2 table offset: cluster-aligned, after the header, the whole table inside the file.</summary>
    private static bool TableLiesInside(ulong entry, QedGeometry geo, long fileLength) =>
        entry % (ulong)geo.ClusterSize == 0 && entry >= (ulong)geo.HeaderBytes
        && entry <= (ulong)(fileLength / geo.ClusterSize * geo.ClusterSize) - (ulong)geo.TableBytes;
}
