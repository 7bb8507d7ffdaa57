using System.Buffers.Binary;

namespace QedFuse.Block.Partitions;

/// <summary>
/// The GUID partition table (Linux's block/partitions/efi.c rules): the primary header in
/// sector 1, checked by signature, CRC and bounds; entry i with a non-zero type GUID inside
/// the disk is partition i+1.
/// </summary>
internal static class GptTable
{
    private const int EntrySize = 128;

    /// <summary>Larger entry arrays than this are not a table anyone wrote (the usual is 128 entries, 16 KiB).</summary>
    private const long MaxEntryBytes = 1 << 20;

    public static IEnumerable<Partition> Read(IBlockImage disk, long sectors)
    {
        long lastLba = sectors - 1;
        byte[] header = new byte[PartitionTable.SectorSize];
        disk.Read(PartitionTable.SectorSize, header);
        if (!header.AsSpan(0, 8).SequenceEqual("EFI PART"u8))
        {
            return [];
        }

        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
        if (headerSize < 92 || headerSize > PartitionTable.SectorSize)
        {
            return [];
        }

        uint headerCrc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(16));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), 0);
        ulong myLba = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(24));
        ulong firstUsable = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(40));
        ulong lastUsable = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(48));
        ulong entriesLba = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(72));
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(80));
        uint entrySize = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(84));
        uint entriesCrc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(88));
        long entryBytes = (long)count * EntrySize;
        if (Crc32.Compute(header.AsSpan(0, (int)headerSize)) != headerCrc || myLba != 1
            || firstUsable > (ulong)lastLba || lastUsable > (ulong)lastLba || lastUsable < firstUsable
            || entrySize != EntrySize || entryBytes > MaxEntryBytes
            || entriesLba > (ulong)lastLba || (long)entriesLba * PartitionTable.SectorSize + entryBytes > disk.VirtualSize)
        {
            return [];
        }

        byte[] entries = new byte[entryBytes];
        disk.Read((long)entriesLba * PartitionTable.SectorSize, entries);
        if (Crc32.Compute(entries) != entriesCrc)
        {
            return [];
        }

        var found = new List<Partition>();
        for (int i = 0; i < count && i < PartitionTable.MaxNumber; i++)
        {
            ReadOnlySpan<byte> e = entries.AsSpan(i * EntrySize, EntrySize);
            ulong start = BinaryPrimitives.ReadUInt64LittleEndian(e[32..]);
            ulong end = BinaryPrimitives.ReadUInt64LittleEndian(e[40..]);
            if (e[..16].IndexOfAnyExcept((byte)0) < 0 || start > (ulong)lastLba || end > (ulong)lastLba || end < start)
            {
                continue;
            }

            found.Add(new Partition(i + 1, (long)start * PartitionTable.SectorSize, (long)(end - start + 1) * PartitionTable.SectorSize));
        }

        return found;
    }
}
