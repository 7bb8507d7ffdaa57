using System.Buffers.Binary;

namespace QedFuse.Block.Partitions;

/// <summary>
/// The DOS partition table (Linux's block/partitions/msdos.c rules): four primary slots in
/// sector 0, numbered by slot; each extended slot starts a chain of extended boot records whose
/// data entries become partitions 5, 6, ... in chain order. The extended container itself gets
/// no number of ours.
/// </summary>
internal static class MbrTable
{
    private const int EntriesOffset = 0x1BE;
    private const int EntrySize = 16;
    private const byte ProtectiveGpt = 0xEE;

    /// <summary>Links followed without finding a data partition before the chain counts as a loop.</summary>
    private const int MaxEmptyLinks = 100;

    private readonly record struct Entry(byte Boot, byte Type, long StartSector, long Sectors)
    {
        public bool IsExtended => Type is 0x05 or 0x0F or 0x85;
    }

    public static bool HasSignature(ReadOnlySpan<byte> sector) => sector[510] == 0x55 && sector[511] == 0xAA;

    /// <summary>A valid boot signature and an entry of type 0xEE: the disk is GPT.</summary>
    public static bool HasProtectiveEntry(ReadOnlySpan<byte> sector)
    {
        if (!HasSignature(sector))
        {
            return false;
        }

        for (int i = 0; i < 4; i++)
        {
            if (EntryAt(sector, i).Type == ProtectiveGpt)
            {
                return true;
            }
        }

        return false;
    }

    public static IEnumerable<Partition> Read(IBlockImage disk, byte[] sector0)
    {
        // A boot flag other than 0 or 0x80 means sector 0 is no partition table (a file system, a boot loader).
        if (!HasSignature(sector0) || Enumerable.Range(0, 4).Any(i => EntryAt(sector0, i).Boot is not (0 or 0x80)))
        {
            return [];
        }

        var found = new List<Partition>();
        int next = 5;
        for (int slot = 1; slot <= 4; slot++)
        {
            Entry e = EntryAt(sector0, slot - 1);
            if (e.Sectors == 0)
            {
                continue;
            }

            if (e.IsExtended)
            {
                ReadExtended(disk, e.StartSector, e.Sectors, found, ref next);
            }
            else
            {
                found.Add(Span(slot, e.StartSector, e.Sectors));
            }
        }

        return found;
    }

    /// <summary>
    /// Walks one extended chain. Each record's data entries are relative to the record itself;
    /// its link to the next record is relative to the start of the whole extended partition.
    /// </summary>
    private static void ReadExtended(IBlockImage disk, long firstSector, long firstSize, List<Partition> found, ref int next)
    {
        long thisSector = firstSector, thisSize = firstSize;
        byte[] sector = new byte[PartitionTable.SectorSize];
        for (int emptyLinks = 0; ++emptyLinks <= MaxEmptyLinks && next <= PartitionTable.MaxNumber;)
        {
            if ((thisSector + 1) * PartitionTable.SectorSize > disk.VirtualSize)
            {
                return;
            }

            disk.Read(thisSector * PartitionTable.SectorSize, sector);
            if (!HasSignature(sector))
            {
                return;
            }

            for (int i = 0; i < 4; i++)
            {
                Entry e = EntryAt(sector, i);
                if (e.Sectors == 0 || e.IsExtended)
                {
                    continue;
                }

                long start = thisSector + e.StartSector;
                // The 3rd and 4th entries sometimes hold garbage: only trust them inside the container.
                if (i >= 2 && (e.StartSector + e.Sectors > thisSize || start < firstSector || start + e.Sectors > firstSector + firstSize))
                {
                    continue;
                }

                found.Add(Span(next, start, e.Sectors));
                emptyLinks = 0;
                if (++next > PartitionTable.MaxNumber)
                {
                    return;
                }
            }

            int link = Enumerable.Range(0, 4).FirstOrDefault(i => EntryAt(sector, i) is { Sectors: > 0, IsExtended: true }, -1);
            if (link < 0)
            {
                return;
            }

            Entry l = EntryAt(sector, link);
            thisSector = firstSector + l.StartSector;
            thisSize = l.Sectors;
        }
    }

    private static Partition Span(int number, long startSector, long sectors) =>
        new(number, startSector * PartitionTable.SectorSize, sectors * PartitionTable.SectorSize);

    private static Entry EntryAt(ReadOnlySpan<byte> sector, int i)
    {
        ReadOnlySpan<byte> e = sector.Slice(EntriesOffset + i * EntrySize, EntrySize);
        return new Entry(e[0], e[4], BinaryPrimitives.ReadUInt32LittleEndian(e[8..]), BinaryPrimitives.ReadUInt32LittleEndian(e[12..]));
    }
}
