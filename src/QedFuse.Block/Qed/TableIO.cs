using System.Buffers;
using System.Buffers.Binary;

namespace QedFuse.Block.Qed;

/// <summary>
/// Reads and writes L1/L2 tables: table_size clusters of little-endian u64 entries. Partial
/// writes go out in whole 512-byte sectors, so an update never rewrites the whole table.
/// </summary>
internal static class TableIO
{
    public const int SectorSize = 512;
    public const int EntriesPerSector = SectorSize / sizeof(ulong);

    public static void Read(HostFile file, long offset, ulong[] entries)
    {
        int bytes = entries.Length * sizeof(ulong);
        byte[] buf = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            file.ReadExactly(offset, buf.AsSpan(0, bytes));
            for (int i = 0; i < entries.Length; i++)
            {
                entries[i] = BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(i * sizeof(ulong)));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>The sector-aligned entry range that covers entries [first, last].</summary>
    public static (int First, int Count) SectorRange(int first, int last, int tableEntries)
    {
        int start = first / EntriesPerSector * EntriesPerSector;
        int end = Math.Min(tableEntries, (last / EntriesPerSector + 1) * EntriesPerSector);
        return (start, end - start);
    }

    /// <summary>Serialises entries [first, first+count) into a new buffer for a later write.</summary>
    public static byte[] Encode(ReadOnlySpan<ulong> entries, int first, int count)
    {
        byte[] buf = new byte[count * sizeof(ulong)];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(i * sizeof(ulong)), entries[first + i]);
        }

        return buf;
    }
}
