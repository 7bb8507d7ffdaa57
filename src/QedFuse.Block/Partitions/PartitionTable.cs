namespace QedFuse.Block.Partitions;

/// <summary>
/// The partitions of a disk image as the Linux kernel finds them (block/partitions): a GPT
/// behind a protective MBR first, else a DOS table with primary partitions 1-4 and logical
/// ones from 5 along the extended chain. Sectors are 512 bytes, as on a loop device.
/// Partitions reaching past the end of the disk are cut at it; ones starting past it are
/// dropped, as the kernel does.
/// </summary>
public static class PartitionTable
{
    public const int SectorSize = 512;

    /// <summary>Partition numbers stop here, as the kernel's (DISK_MAX_PARTS).</summary>
    internal const int MaxNumber = 255;

    /// <summary>The disk's partitions by number; empty when it has no table we recognise.</summary>
    public static IReadOnlyList<Partition> Read(IBlockImage disk)
    {
        long sectors = disk.VirtualSize / SectorSize;
        if (sectors < 2)
        {
            return [];
        }

        byte[] mbr = new byte[SectorSize];
        disk.Read(0, mbr);
        IEnumerable<Partition> found = MbrTable.HasProtectiveEntry(mbr)
            ? GptTable.Read(disk, sectors)
            : MbrTable.Read(disk, mbr);
        return found
            .Where(p => p.Length > 0 && p.Offset < sectors * SectorSize)
            .Select(p => p with { Length = Math.Min(p.Length, sectors * SectorSize - p.Offset) })
            .OrderBy(p => p.Number)
            .ToList();
    }
}
