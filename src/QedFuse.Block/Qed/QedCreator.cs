namespace QedFuse.Block.Qed;

/// <summary>
/// Creates empty QED images laid out as qemu-img does: the header and backing file name in
/// the first cluster, a zeroed L1 table right after it, nothing else.
/// </summary>
internal static class QedCreator
{
    public static void Create(string path, ImageCreateOptions options, ImageOpener opener)
    {
        uint clusterSize = ParseOption(options, path, "cluster_size", QedHeader.DefaultClusterSize, QedHeader.IsValidClusterSize,
            "must be a power of two from 4K to 64M");
        uint tableSize = ParseOption(options, path, "table_size", QedHeader.DefaultTableSize, QedHeader.IsValidTableSize,
            "must be a power of two from 1 to 16 (clusters per table)");
        foreach (string key in options.FormatOptions.Keys.Where(k => k is not ("cluster_size" or "table_size")))
        {
            throw new BadImageException(path, $"unknown option '{key}' for the qed format (known: cluster_size, table_size)");
        }

        ulong features = 0;
        long? backingSize = null;
        if (options.BackingFile is { } backingName)
        {
            using IBlockImage backing = opener.OpenBacking(path, backingName, options.BackingFormat,
                new ImageOpenOptions { ReadOnly = true, ForceShare = true });
            backingSize = backing.VirtualSize;
            features |= QedHeader.FeatureBackingFile;
            if (backing.FormatName == "raw")
            {
                features |= QedHeader.FeatureBackingFormatNoProbe;
            }
        }

        long size = options.Size ?? backingSize
            ?? throw new BadImageException(path, "an image size is needed when there is no backing file");
        ulong rounded = ((ulong)size + 511) / 512 * 512;
        ulong max = QedHeader.MaxImageSize(clusterSize, tableSize);
        if (size <= 0 || rounded > max)
        {
            throw new BadImageException(path,
                $"size {size} is out of range: must be from 1 byte to {max} ({ByteSize.Format((long)max)}) with cluster_size {clusterSize} and table_size {tableSize}");
        }

        byte[] nameBytes = options.BackingFile is null ? [] : System.Text.Encoding.UTF8.GetBytes(options.BackingFile);
        if (nameBytes.Length > QedFormat.MaxBackingNameBytes)
        {
            throw new BadImageException(path, $"backing file name longer than {QedFormat.MaxBackingNameBytes} bytes");
        }

        uint headerClusters = (uint)((QedHeader.Size + nameBytes.Length + clusterSize - 1) / clusterSize);
        var header = new QedHeader
        {
            ClusterSize = clusterSize,
            TableSize = tableSize,
            HeaderSize = headerClusters,
            Features = features,
            L1TableOffset = (ulong)headerClusters * clusterSize,
            ImageSize = rounded,
            BackingFilenameOffset = nameBytes.Length > 0 ? (uint)QedHeader.Size : 0,
            BackingFilenameSize = (uint)nameBytes.Length,
        };

        byte[] head = new byte[QedHeader.Size + nameBytes.Length];
        header.WriteTo(head);
        nameBytes.CopyTo(head, QedHeader.Size);
        WriteNewFile(path, head, (long)header.L1TableOffset + (long)tableSize * clusterSize, options.Overwrite);
    }

    private static void WriteNewFile(string path, byte[] head, long length, bool overwrite)
    {
        string temp = $"{path}.creating-{Environment.ProcessId}";
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                RandomAccess.Write(handle, head, 0);
                RandomAccess.SetLength(handle, length);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temp, path, overwrite);
        }
        catch (IOException) when (File.Exists(path) && !overwrite)
        {
            File.Delete(temp);
            throw new BadImageException(path, "file exists (use --force to replace it)");
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static uint ParseOption(ImageCreateOptions options, string path, string key, uint fallback, Func<ulong, bool> valid, string rule)
    {
        if (!options.FormatOptions.TryGetValue(key, out string? text))
        {
            return fallback;
        }

        long? v = ByteSize.TryParse(text);
        return v is { } n && n > 0 && valid((ulong)n)
            ? (uint)n
            : throw new BadImageException(path, $"option {key}={text} is invalid: {rule}");
    }
}
